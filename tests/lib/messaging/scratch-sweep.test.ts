import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { sweepScratchLeftovers } from "../../../src/lib/messaging/scratch-sweep";

describe("the sweep of scratch files dead processes left in SESSION_TMP_DIR", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "wavault-sweep-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Creates `name` in root (a folder when it ends in "/"), last touched `ageMs` ago. */
  const leave = async (name: string, ageMs: number) => {
    const file = path.join(root, name.replace(/\/$/, ""));
    if (name.endsWith("/")) {
      await mkdir(path.join(file, "Default"), { recursive: true });
      await writeFile(path.join(file, "Default", "data"), "x");
    } else await writeFile(file, "x");
    const at = new Date(Date.now() - ageMs);
    await utimes(file, at, at);
  };

  it("deletes an archive being written (or re-encrypted) and a restore's scratch once untouched for an hour, and nothing else", async () => {
    const hours = (n: number) => n * 60 * 60_000;
    await leave(`wavault-archive-${randomUUID()}.wvlt`, hours(2));
    await leave(".session-abc123.restore-0123456789ab.tgz", hours(2)); // the login keys in plain
    await leave(".session-abc123.restore-0123456789ab/", hours(2));
    await leave(".session-abc123.previous-ba9876543210/", hours(2));
    await leave(`wavault-reencrypt-${randomUUID()}.wvlt`, hours(2)); // npm run reencrypt:sessions
    const fresh = [`wavault-archive-${randomUUID()}.wvlt`, ".session-def456.restore-0123456789ab.tgz"];
    for (const name of fresh) await leave(name, 60_000); // another process's work under way
    const others = ["session-abc123", "session-old", "wavault-archive-notes.txt", ".wavault-version"];
    await leave("session-abc123/", hours(48)); // a profile, however old
    await leave("session-old/", hours(24 * 40));
    await leave("wavault-archive-notes.txt", hours(5));
    await leave(".wavault-version", hours(5));

    expect(await sweepScratchLeftovers(root)).toBe(5);
    expect((await readdir(root)).sort()).toEqual([...fresh, ...others].sort());
    expect(await sweepScratchLeftovers(path.join(root, "missing"))).toBe(0);
  });
});
