import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Writes a profile laid out like a Chromium user data dir: login data where WhatsApp Web
 * keeps it, plus caches and lock files that must be pruned. For fast unit tests; the
 * real-Chromium test proves the layout against the browser.
 */
export async function writeFakeProfile(root: string, options: { cacheBytes?: number } = {}): Promise<void> {
  const files: Record<string, Buffer | string> = {
    "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log": "wa-keys ".repeat(2000),
    "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/CURRENT": "MANIFEST-000001\n",
    "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/MANIFEST-000001": "manifest",
    "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/LOCK": "",
    "Default/Local Storage/leveldb/000003.log": "WAToken1 ".repeat(100),
    "Default/Local Storage/leveldb/LOCK": "",
    "Default/Cache/Cache_Data/data_1": randomBytes(options.cacheBytes ?? 256 * 1024),
    "Default/Code Cache/js/index": randomBytes(64 * 1024),
    "Default/Service Worker/CacheStorage/abc/0": randomBytes(64 * 1024),
    "Default/Preferences": "{}",
    "GrShaderCache/data_0": randomBytes(16 * 1024),
    "Crashpad/settings.dat": "x",
    "Local State": "{}",
  };
  for (const [relative, content] of Object.entries(files)) {
    const file = path.join(root, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/** Every file under `root` with its content, for "exactly as it was" comparisons. */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const full = path.join(dir, name);
      const info = await stat(full);
      if (info.isDirectory()) await walk(full);
      else out[path.relative(root, full)] = (await readFile(full)).toString("base64");
    }
  };
  await walk(root);
  return out;
}
