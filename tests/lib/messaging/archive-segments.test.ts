import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ArchiveCorruptError, ArchiveDecryptError } from "../../../src/lib/messaging/archive-errors";
import { ARCHIVE_FORMAT_VERSION, SEGMENT_BYTES } from "../../../src/lib/messaging/archive-format";
import { readArchive } from "../../../src/lib/messaging/session-archiver";
import { craftTar, newArchiver, newKeyRing, sealArchive, sealArchiveV1, type CraftedEntry } from "../../helpers/crafted-archive";
import { snapshotTree, writeFakeProfile } from "../../helpers/fake-profile";

// Small segments, so a few dozen KB of archive make many of them.
const SEGMENT = 1024;
const SEALED_SEGMENT = SEGMENT + 16;

/** Forty 1 KB files of noise: ~41 KB of gzip(tar), about forty segments. */
const entries: CraftedEntry[] = Array.from({ length: 40 }, (_, i) => ({
  path: `Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/${String(i).padStart(6, "0")}.ldb`,
  body: randomBytes(1024),
}));

describe("archive format version 2: segments sealed one by one", () => {
  const keys = newKeyRing();
  const archiver = newArchiver(keys);
  const payload = gzipSync(craftTar(entries));
  let dir: string;
  let target: string;
  let before: Record<string, string>;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-segments-"));
    target = path.join(dir, "restored");
    await writeFakeProfile(target);
    before = await snapshotTree(target);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The archive cut into its header and its sealed segments. */
  function split(archive: Buffer) {
    // "WVLT" · version · key id length · key id · salt (16) · segment size (4)
    const header = archive.subarray(0, 6 + archive[5]! + 16 + 4);
    const segments: Buffer[] = [];
    for (let at = header.length; at < archive.length; at += SEALED_SEGMENT) {
      segments.push(archive.subarray(at, at + SEALED_SEGMENT));
    }
    return { header, segments };
  }

  async function expectRefused(archive: Buffer | AsyncIterable<Uint8Array>, errorClass: new (...args: never[]) => Error, match?: RegExp) {
    const attempt = archiver.restoreSession(archive, target);
    await expect(attempt).rejects.toBeInstanceOf(errorClass);
    if (match) await expect(attempt).rejects.toThrow(match);
    expect(await snapshotTree(target)).toEqual(before);
    expect(await readdir(dir), "no staging directory or scratch file left beside the target").toEqual(["restored"]);
  }

  it("writes new archives in version 2, in segments of SEGMENT_BYTES", async () => {
    const profile = path.join(dir, "profile");
    await writeFakeProfile(profile);
    const archived = await archiver.archiveSession(profile);
    const archive = await readArchive(archived);
    expect(archived.formatVersion).toBe(2);
    expect(ARCHIVE_FORMAT_VERSION).toBe(2);
    expect(archive[4]).toBe(2);
    const keyIdLength = archive[5]!;
    expect(archive.readUInt32BE(6 + keyIdLength + 16)).toBe(SEGMENT_BYTES);
  });

  it("restores an archive of many segments however its bytes arrive", async () => {
    const archive = sealArchive(payload, keys, SEGMENT);
    expect(split(archive).segments.length).toBeGreaterThan(30);
    async function* chunks() {
      // 1 to ~3 segments at a time, never aligned with them.
      for (let offset = 0, size = 1; offset < archive.length; offset += size, size = (size * 7 + 13) % 3100) {
        yield archive.subarray(offset, offset + size);
      }
    }
    const restored = await archiver.restoreSession(chunks(), target);
    expect(restored.entries).toBe(entries.length);
    const tree = await snapshotTree(target);
    expect(Object.keys(tree)).toHaveLength(entries.length);
    for (const entry of entries) expect(tree[entry.path]).toBe(Buffer.from(entry.body!).toString("base64"));
  });

  it("refuses segments reordered, dropped or repeated, and an archive cut at a segment boundary", async () => {
    const { header, segments } = split(sealArchive(payload, keys, SEGMENT));
    const [first, second, ...rest] = segments;
    const attempts = {
      swapped: Buffer.concat([header, second!, first!, ...rest]),
      dropped: Buffer.concat([header, first!, ...rest]),
      repeated: Buffer.concat([header, first!, first!, second!, ...rest]),
      "cut at a boundary": Buffer.concat([header, first!, second!, ...rest.slice(0, -1)]),
      "last segment dropped, the one before moved to the end": Buffer.concat([header, first!, ...rest.slice(0, -1), second!]),
    };
    for (const [label, archive] of Object.entries(attempts)) {
      await expectRefused(archive, ArchiveDecryptError).catch((error: Error) => {
        throw new Error(`${label}: ${error.message}`);
      });
    }
  });

  it("refuses a changed header: every segment is bound to it", async () => {
    const archive = sealArchive(payload, keys, SEGMENT);
    const sizeAt = 6 + archive[5]! + 16;
    const withSize = (size: number) => {
      const changed = Buffer.from(archive);
      changed.writeUInt32BE(size, sizeAt);
      return changed;
    };
    await expectRefused(withSize(SEGMENT * 2), ArchiveDecryptError, /authentication failed/);
    await expectRefused(withSize(64 * 1024 * 1024), ArchiveCorruptError, /segment size/);
    await expectRefused(withSize(0), ArchiveCorruptError, /segment size/);
    const salt = Buffer.from(archive);
    salt[sizeAt - 1]! ^= 1;
    await expectRefused(salt, ArchiveDecryptError, /authentication failed/);
    const version = Buffer.from(archive);
    version[4] = 3;
    await expectRefused(version, ArchiveCorruptError, /unsupported format version 3/);
    version[4] = 1; // read as version 1: no tag of that construction fits
    await expectRefused(version, ArchiveDecryptError);
  });

  it("unpacks while the archive arrives, yet a bad last segment leaves nothing behind", async () => {
    const archive = sealArchive(payload, keys, SEGMENT);
    const { segments } = split(archive);
    const lastStart = archive.length - segments.at(-1)!.length;
    const tampered = Buffer.from(archive.subarray(lastStart));
    tampered[0]! ^= 1;
    const firstFile = path.basename(entries[0]!.path);
    let stagedBeforeTheEnd: string[] = [];
    async function* download() {
      yield archive.subarray(0, lastStart);
      // Everything but the last segment is in: its authenticated files are being unpacked
      // into the staging directory already, not into a scratch file.
      await vi.waitFor(() => {
        const staging = readdirSync(dir).find((name) => name.startsWith(".restored.restore-"));
        const leveldb = staging && path.join(dir, staging, path.dirname(entries[0]!.path));
        expect(leveldb && existsSync(path.join(leveldb, firstFile))).toBe(true);
      });
      stagedBeforeTheEnd = readdirSync(dir);
      yield tampered;
    }
    await expectRefused(download(), ArchiveDecryptError, /authentication failed/);
    expect(stagedBeforeTheEnd.filter((name) => name.endsWith(".tgz")), "no scratch file for version 2").toEqual([]);
  });

  describe("archives saved before version 2", () => {
    it("still restores a version 1 archive", async () => {
      const restored = await archiver.restoreSession(sealArchiveV1(payload, keys), target);
      expect(restored.entries).toBe(entries.length);
      expect(Object.keys(await snapshotTree(target))).toHaveLength(entries.length);
      expect(await readdir(dir)).toEqual(["restored"]);
    });

    it("refuses a changed or cut version 1 archive, scratch file and staging removed", async () => {
      const archive = sealArchiveV1(payload, keys);
      for (const offset of [10, Math.floor(archive.length / 2), archive.length - 1]) {
        const flipped = Buffer.from(archive);
        flipped[offset]! ^= 1;
        await expectRefused(flipped, ArchiveDecryptError);
      }
      await expectRefused(archive.subarray(0, archive.length - 1000), ArchiveDecryptError);
    });
  });
});
