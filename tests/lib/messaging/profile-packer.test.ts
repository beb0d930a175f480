import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { constants, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ProfileChangedError } from "../../../src/lib/messaging/archive-errors";
import { optionsFor, packProfile } from "../../../src/lib/messaging/profile-packer";
import { scanProfile } from "../../../src/lib/messaging/profile-scan";

describe("packProfile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-packer-"));
    const idb = path.join(dir, "Default", "IndexedDB", "x.indexeddb.leveldb");
    await mkdir(idb, { recursive: true });
    await writeFile(path.join(idb, "000003.log"), "text ".repeat(10_000));
    await writeFile(path.join(idb, "000004.ldb"), randomBytes(100_000));
    // A path longer than ustar's 255 bytes needs a pax header.
    const deep = path.join(dir, "Default", "IndexedDB", "d".repeat(120), "e".repeat(120));
    await mkdir(deep, { recursive: true });
    await writeFile(path.join(deep, "f".repeat(40)), "deep");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one gzip member per entry that together gunzip to a tar of every kept file", async () => {
    const scan = await scanProfile(dir);
    const members: Buffer[] = [];
    await packProfile(dir, scan.kept, 6, async (member) => void members.push(member));
    expect(members).toHaveLength(scan.kept.length + 1);
    const tar = gunzipSync(Buffer.concat(members));
    expect(tar.length % 512).toBe(0);
    expect(tar.includes(Buffer.from("text text text"))).toBe(true);
  });

  it("reports a file that vanished after the scan as ProfileChangedError, and stops", async () => {
    const scan = await scanProfile(dir);
    const victim = scan.kept.find((entry) => entry.path.endsWith("000004.ldb"))!;
    await rename(path.join(dir, victim.path), path.join(dir, "moved-away"));
    try {
      const members: Buffer[] = [];
      await expect(packProfile(dir, scan.kept, 6, async (member) => void members.push(member))).rejects.toBeInstanceOf(
        ProfileChangedError,
      );
      expect(members.length).toBeLessThan(scan.kept.length);
    } finally {
      await rename(path.join(dir, "moved-away"), path.join(dir, victim.path));
    }
  });

  it("uses the configured level for text, Huffman only for skewed bytes, and stores what is already compressed", () => {
    expect(optionsFor(Buffer.from("hello world ".repeat(10_000)), 6)).toEqual({ level: 6 });
    // Random bytes drawn from 16 symbols: no repeats for LZ77, but only 4 bits of entropy
    // per byte, which Huffman coding alone halves.
    const skewed = Buffer.from(randomBytes(100_000).map((byte) => byte % 16));
    expect(optionsFor(skewed, 6)).toEqual({ level: 1, strategy: constants.Z_HUFFMAN_ONLY });
    // 7 bits per byte: what snappy output (Chromium's IndexedDB) looks like to deflate.
    const snappyLike = Buffer.from(randomBytes(100_000).map((byte) => byte % 128));
    expect(optionsFor(snappyLike, 6)).toEqual({ level: 0 });
    expect(optionsFor(randomBytes(100_000), 6)).toEqual({ level: 0 });
    expect(optionsFor(Buffer.from("tiny"), 9)).toEqual({ level: 9 });
  });
});
