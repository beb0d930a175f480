import { mkdir, mkdtemp, rm, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ProfileChangedError } from "../../../src/lib/messaging/archive-errors";
import { findChangedFile, scanProfile } from "../../../src/lib/messaging/profile-scan";
import { writeFakeProfile } from "../../helpers/fake-profile";

/** Creates and deletes files in `dir` (as a running browser does) until the returned stop() is called. */
function churn(dir: string): () => Promise<void> {
  let stopped = false;
  const running = (async () => {
    for (let n = 0; !stopped; n++) {
      await writeFile(path.join(dir, `f_${n + 300}`), "x");
      await unlink(path.join(dir, `f_${n}`)).catch(() => {});
    }
  })();
  return async () => {
    stopped = true;
    await running;
  };
}

describe("scanProfile while the browser writes", () => {
  let root: string;
  const profile = () => path.join(root, "profile");

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "wavault-scan-"));
    await writeFakeProfile(profile());
    for (const dir of ["Default/Cache/Cache_Data", "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb"]) {
      await mkdir(path.join(profile(), dir), { recursive: true });
      for (let n = 0; n < 300; n++) await writeFile(path.join(profile(), dir, `f_${n}`), "x");
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** What 40 scans of the profile failed with while files come and go in its folder `relativeDir`. */
  const failuresWhileChurning = async (relativeDir: string) => {
    const stop = churn(path.join(profile(), relativeDir));
    const failures: unknown[] = [];
    try {
      for (let i = 0; i < 40; i++) await scanProfile(profile()).catch((error: unknown) => failures.push(error));
    } finally {
      await stop();
    }
    return failures;
  };

  it("leaves out cache files that go while it walks, and never fails for them", async () => {
    expect(await failuresWhileChurning("Default/Cache/Cache_Data")).toEqual([]);
  });

  it("reports login files that go while it walks as ProfileChangedError, so the save tries again", async () => {
    const failures = await failuresWhileChurning("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb");
    expect(failures.filter((error) => !(error instanceof ProfileChangedError))).toEqual([]);
  });

  it("fails with the file system's error when the profile itself is not there", async () => {
    await expect(scanProfile(path.join(root, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("scanProfile's listing", () => {
  let root: string;
  const files: Record<string, string> = {
    "Default/IndexedDB/b.leveldb/10.ldb": "ten",
    "Default/IndexedDB/b.leveldb/2.ldb": "two!",
    "Default/IndexedDB/b.leveldb/LOCK": "",
    "Default/IndexedDB/a.blob/1/00/x": "blob-x",
    "Default/IndexedDB/a.blob/1/00/y": "blob-y!",
    "Default/Local Storage/leveldb/000003.log": "token",
    "Default/Cache/Cache_Data/data_1": "cached bytes",
    "Default/Service Worker/CacheStorage/0": "sw",
    "Local State": "{}",
  };

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "wavault-scan-order-"));
    for (const [relative, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, relative)), { recursive: true });
      await writeFile(path.join(root, relative), content);
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("lists what is kept parents first and in name order, however many folders it walks at once", async () => {
    const scan = await scanProfile(root);
    expect(scan.kept.map((entry) => `${entry.type} ${entry.path}`)).toEqual([
      "dir Default",
      "dir Default/IndexedDB",
      "dir Default/IndexedDB/a.blob",
      "dir Default/IndexedDB/a.blob/1",
      "dir Default/IndexedDB/a.blob/1/00",
      "file Default/IndexedDB/a.blob/1/00/x",
      "file Default/IndexedDB/a.blob/1/00/y",
      "dir Default/IndexedDB/b.leveldb",
      "file Default/IndexedDB/b.leveldb/10.ldb",
      "file Default/IndexedDB/b.leveldb/2.ldb",
      "dir Default/Local Storage",
      "dir Default/Local Storage/leveldb",
      "file Default/Local Storage/leveldb/000003.log",
    ]);
    const bytes = (names: string[]) => names.reduce((sum, name) => sum + Buffer.byteLength(files[name]!), 0);
    expect(scan).toMatchObject({
      rawFiles: Object.keys(files).length,
      rawBytes: bytes(Object.keys(files)),
      keptFiles: 5,
      keptBytes: bytes(scan.kept.filter((entry) => entry.type === "file").map((entry) => entry.path)),
    });
    expect(scan.kept.find((entry) => entry.path.endsWith("/2.ldb"))).toMatchObject({ size: 4 });
  });

  it("findChangedFile names the first changed file in the scan's order, or null", async () => {
    const scan = await scanProfile(root);
    expect(await findChangedFile(root, scan)).toBeNull();
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(root, "Default/Local Storage/leveldb/000003.log"), later, later);
    await writeFile(path.join(root, "Default/IndexedDB/b.leveldb/10.ldb"), "ten, and more");
    expect(await findChangedFile(root, scan)).toBe("Default/IndexedDB/b.leveldb/10.ldb");
    await rm(path.join(root, "Default/IndexedDB/a.blob/1/00/y"));
    expect(await findChangedFile(root, scan)).toBe("Default/IndexedDB/a.blob/1/00/y");
  });
});
