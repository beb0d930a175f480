import { mkdir, mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ProfileChangedError } from "../../../src/lib/messaging/archive-errors";
import { scanProfile } from "../../../src/lib/messaging/profile-scan";
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
