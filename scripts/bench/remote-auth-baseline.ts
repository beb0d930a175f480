import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type PocketBase from "pocketbase";
import wwebjs from "whatsapp-web.js";

const { RemoteAuth } = wwebjs;

import { createBenchUser, type BenchRun } from "./bench-support";

/** The RemoteAuth methods the baseline drives; they are not in the library's typings. */
interface RemoteAuthInternals {
  userDataDir: string;
  sessionName: string;
  compressSession(): Promise<string>;
  unCompressSession(zipPath: string): Promise<void>;
}

/**
 * whatsapp-web.js's own RemoteAuth code path, timed the way wavault is: compressSession
 * (copy the required dirs, zip with archiver) as archive time, an upload of the zip to
 * the same PocketBase, and a download plus unCompressSession (unzipper) as restore
 * time. Same profile, same PocketBase, same machine; `run` does one of each.
 */
export async function remoteAuthBaseline(admin: PocketBase, profileDir: string, workDir: string) {
  const userId = await createBenchUser(admin);
  const auth = new RemoteAuth({
    clientId: "bench",
    dataPath: workDir,
    backupSyncIntervalMs: 60_000,
    store: { sessionExists: async () => false, save: async () => {}, extract: async () => {}, delete: async () => {} },
  }) as unknown as RemoteAuthInternals;
  auth.sessionName = "RemoteAuth-bench";
  const expected = await treeBytes(path.join(profileDir, "Default"), ["IndexedDB", "Local Storage"]);
  let recordId: string | undefined;

  return async function run(index: number): Promise<BenchRun> {
    auth.userDataDir = profileDir;
    let started = performance.now();
    const zipPath = await auth.compressSession();
    const archiveMs = performance.now() - started;
    const zip = await readFile(zipPath);
    const fields = { user: userId, archive: new File([new Uint8Array(zip)], "RemoteAuth-bench.zip"), size_bytes: zip.length };
    const record = recordId
      ? await admin.collection("whatsapp_sessions").update(recordId, fields)
      : await admin.collection("whatsapp_sessions").create(fields);
    recordId = record.id;
    await rm(zipPath, { force: true });
    await rm(path.join(workDir, "wwebjs_temp_session_bench"), { recursive: true, force: true });

    const target = path.join(workDir, `remoteauth-restore-${index}`);
    auth.userDataDir = target;
    started = performance.now();
    const token = await admin.files.getToken();
    const response = await fetch(admin.files.getURL(record, record.archive as string, { token }));
    const downloaded = path.join(workDir, "RemoteAuth-bench.zip");
    await writeFile(downloaded, Buffer.from(await response.arrayBuffer()));
    await auth.unCompressSession(downloaded);
    // unzipper reports "finish" before its last files are written: the restore is done
    // when every file is on disk at its full size.
    await waitForTree(target, expected);
    const restoreMs = performance.now() - started;
    await rm(target, { recursive: true, force: true, maxRetries: 10 });
    return { archiveBytes: zip.length, archiveMs, restoreMs };
  };
}

/** Files and bytes under the named subdirectories of `dir`. */
async function treeBytes(dir: string, only?: string[]): Promise<{ files: number; bytes: number }> {
  const total = { files: 0, bytes: 0 };
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        total.files += 1;
        total.bytes += (await stat(full)).size;
      }
    }
  };
  for (const name of only ?? [""]) await walk(path.join(dir, name));
  return total;
}

async function waitForTree(dir: string, expected: { files: number; bytes: number }): Promise<void> {
  for (;;) {
    const now = await treeBytes(path.join(dir, "Default"), ["IndexedDB", "Local Storage"]);
    if (now.files >= expected.files && now.bytes >= expected.bytes) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
