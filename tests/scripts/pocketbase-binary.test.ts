import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  ensurePocketBaseBinary,
  PocketBaseBinaryError,
  POCKETBASE_VERSION,
  readPocketBaseVersion,
} from "../../scripts/lib/pocketbase-binary";
import { testPocketBase } from "../helpers/pocketbase";

describe("ensurePocketBaseBinary", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-pbbin-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the test run a server stamped with the pinned version", async () => {
    expect(await readPocketBaseVersion(testPocketBase().bin)).toBe(POCKETBASE_VERSION);
  });

  it("reuses a binary it built before, without Go", async () => {
    const built = path.join(dir, "pocketbase");
    await copyFile(testPocketBase().bin, built);
    // An empty PATH: no `go`, so only reuse can succeed.
    await expect(ensurePocketBaseBinary({ buildDir: dir, searchPath: "" })).resolves.toBe(built);
  });

  it("uses a pocketbase on PATH that reports the pinned version", async () => {
    const onPath = path.join(dir, "pocketbase");
    await copyFile(testPocketBase().bin, onPath);
    await expect(ensurePocketBaseBinary({ buildDir: path.join(dir, "build"), searchPath: dir })).resolves.toBe(onPath);
  });

  it("uses POCKETBASE_BIN as it is, and refuses one that does not exist", async () => {
    const explicit = testPocketBase().bin;
    await expect(ensurePocketBaseBinary({ explicitBin: explicit, searchPath: "" })).resolves.toBe(explicit);
    await expect(ensurePocketBaseBinary({ explicitBin: path.join(dir, "nope") })).rejects.toThrow(/POCKETBASE_BIN/);
  });

  it("says exactly how to get one when there is neither Go nor a binary", async () => {
    const attempt = ensurePocketBaseBinary({ buildDir: dir, searchPath: path.join(dir, "empty") });
    await expect(attempt).rejects.toBeInstanceOf(PocketBaseBinaryError);
    await expect(attempt).rejects.toThrow(/Go >= 1\.25[\s\S]*POCKETBASE_BIN=\/path\/to\/pocketbase/);
  });
});
