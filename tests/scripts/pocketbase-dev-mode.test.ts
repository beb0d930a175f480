import { mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { projectArgs, runToExit } from "../../scripts/lib/pocketbase-server";
import { testPocketBase } from "../helpers/pocketbase";

/**
 * PocketBase takes a binary under the OS temp dir for `go run` and turns dev mode on,
 * printing every SQL statement with its values (a CI clone, a deploy unpacked in /tmp).
 * The project's commands turn it off.
 */
describe("PocketBase commands run by wavault", () => {
  let dir: string;
  let bin: string;
  const upsert = (args: string[]) =>
    runToExit(bin, ["superuser", "upsert", ...args, "--", "ops@wavault.test", "a-password-1234"]);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-pb-dev-mode-"));
    bin = path.join(dir, "pocketbase");
    await symlink(testPocketBase().bin, bin);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("never print SQL statements, even from a binary under the temp dir", async () => {
    const dataDir = path.join(dir, "data");
    // As PocketBase decides by itself: dev mode, the statements and their values printed.
    const defaults = await upsert(projectArgs(dataDir).filter((arg) => arg !== "--dev=false"));
    expect(defaults.code).toBe(0);
    expect(defaults.output).toContain("INSERT INTO `_superusers`");

    const ours = await upsert(projectArgs(path.join(dir, "data-2")));
    expect(ours.code).toBe(0);
    expect(ours.output).not.toMatch(/SELECT|INSERT/);
  });
});
