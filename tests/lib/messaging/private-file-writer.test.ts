import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PrivateFileWriter } from "../../../src/lib/messaging/private-file-writer";

const execFileAsync = promisify(execFile);

describe("PrivateFileWriter", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-writer-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes many small pieces in order into a new 0600 file", async () => {
    const file = path.join(dir, "pieces");
    const writer = await PrivateFileWriter.create(file);
    // Thousands of pieces of every size (empty ones too), gathered into ~1 MB writes.
    const pieces = Array.from({ length: 5000 }, (_, index) => randomBytes(index % 700));
    for (const piece of pieces) await writer.write(piece);
    await writer.close();
    expect((await readFile(file)).equals(Buffer.concat(pieces))).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(PrivateFileWriter.create(file)).rejects.toMatchObject({ code: "EEXIST" });
  });

  it("discards what it wrote, whatever state it is in", async () => {
    const file = path.join(dir, "discarded");
    const writer = await PrivateFileWriter.create(file);
    await writer.write(randomBytes(3 * 1024 * 1024));
    await writer.discard();
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("fails, rather than leave a short file, when the file cannot grow", async () => {
    // A child whose files may not grow past 1000 KiB: the first 1 MiB flush comes back short
    // (Node ignores SIGXFSZ, so the kernel returns a short count rather than killing it).
    const file = path.join(dir, "limited");
    const script = `
      import { PrivateFileWriter } from ${JSON.stringify(path.resolve("src/lib/messaging/private-file-writer.ts"))};
      const writer = await PrivateFileWriter.create(${JSON.stringify(file)});
      try {
        for (let i = 0; i < 40; i++) await writer.write(Buffer.alloc(64 * 1024, 1));
        await writer.close();
        console.log("written");
      } catch (error) {
        console.log("failed: " + error.message);
      }`;
    const { stdout } = await execFileAsync("bash", [
      "-c",
      `ulimit -f 1000 && exec "${process.execPath}" --import tsx --input-type=module -e "$0"`,
      script,
    ]);
    expect(stdout.trim()).toMatch(/^failed: short write: 1024000 of 1048576 bytes/);
  });
});
