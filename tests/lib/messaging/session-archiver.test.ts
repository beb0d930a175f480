import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, readdirSync, statfsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  ArchiveCorruptError,
  ArchiveDecryptError,
  ArchiveKeyMissingError,
  ArchiveTooLargeError,
  LocalDiskError,
  ProfileEmptyError,
  UnsafeArchiveError,
} from "../../../src/lib/messaging/archive-errors";
import { createKeyRing } from "../../../src/lib/messaging/archive-keys";
import {
  disposeArchive,
  hasValidSession,
  readArchive,
} from "../../../src/lib/messaging/session-archiver";
import { scanProfile } from "../../../src/lib/messaging/profile-scan";
import { craftArchive, newArchiver, newKeyRing, sealArchive, type CraftedEntry } from "../../helpers/crafted-archive";
import { snapshotTree, writeFakeProfile } from "../../helpers/fake-profile";

describe("SessionArchiver", () => {
  let dir: string;
  let profile: string;
  let target: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-archiver-"));
    profile = path.join(dir, "profile");
    target = path.join(dir, "restored");
    await writeFakeProfile(profile);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("archives only the login data and restores it byte for byte", async () => {
    const archiver = newArchiver();
    const archived = await archiver.archiveSession(profile);
    expect(archived.fileCount).toBe(4);
    expect(archived.rawBytes).toBeGreaterThan(archived.archivedBytes);
    expect(archived.sizeBytes).toBe((await readArchive(archived)).length);
    expect(archived.compressionRatio).toBeCloseTo(archived.sizeBytes / archived.rawBytes);
    expect(archived.sha256).toMatch(/^[0-9a-f]{64}$/);

    await archiver.restoreSession(await readArchive(archived), target, { expectedSha256: archived.sha256 });
    const restored = await snapshotTree(target);
    const original = await snapshotTree(profile);
    expect(Object.keys(restored).sort()).toEqual([
      "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log",
      "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/CURRENT",
      "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/MANIFEST-000001",
      "Default/Local Storage/leveldb/000003.log",
    ]);
    for (const [file, content] of Object.entries(restored)) expect(content).toBe(original[file]);
  });

  it("restores from a stream however it is chunked, and from the archive file", async () => {
    const archiver = newArchiver();
    const archived = await archiver.archiveSession(profile);
    const bytes = await readArchive(archived);
    async function* chunks() {
      // 1 to 40 bytes at a time: splits the header, the body and the tag every way.
      for (let offset = 0, size = 1; offset < bytes.length; offset += size, size = (size % 40) + 1) {
        yield bytes.subarray(offset, offset + size);
      }
    }
    await archiver.restoreSession(chunks(), target, { expectedSha256: archived.sha256 });
    expect(hasValidSession(target)).toBe(true);
    await archiver.restoreSession(createReadStream(archived.file), path.join(dir, "again"));
    expect(await snapshotTree(path.join(dir, "again"))).toEqual(await snapshotTree(target));
  });

  it("writes each archive to its own file in the work dir, which disposeArchive removes", async () => {
    const archiver = newArchiver();
    const [first, second] = [await archiver.archiveSession(profile), await archiver.archiveSession(profile)];
    expect(first.file).not.toBe(second.file);
    expect(first.sha256).not.toBe(second.sha256); // a fresh IV each time
    await disposeArchive(first);
    expect(existsSync(first.file)).toBe(false);
    expect(existsSync(second.file)).toBe(true);
  });

  it("encrypts: the archive shows none of the profile's plaintext", async () => {
    const archive = await readArchive(await newArchiver().archiveSession(profile));
    expect(archive.includes(Buffer.from("wa-keys"))).toBe(false);
    expect(archive.includes(Buffer.from("IndexedDB"))).toBe(false);
  });

  it("replaces an existing target whole", async () => {
    const archiver = newArchiver();
    const archive = await readArchive(await archiver.archiveSession(profile));
    await mkdir(path.join(target, "Default"), { recursive: true });
    await writeFile(path.join(target, "Default", "stale-file"), "old");
    await archiver.restoreSession(archive, target);
    expect(existsSync(path.join(target, "Default", "stale-file"))).toBe(false);
    expect(hasValidSession(target)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(["profile", "restored"]);
  });

  it("refuses to archive a profile with no login data", async () => {
    const empty = path.join(dir, "empty");
    await mkdir(path.join(empty, "Default", "Cache"), { recursive: true });
    await writeFile(path.join(empty, "Default", "Cache", "x"), "cache");
    await expect(newArchiver().archiveSession(empty)).rejects.toBeInstanceOf(ProfileEmptyError);
    await expect(newArchiver().archiveSession(path.join(dir, "missing"))).rejects.toBeInstanceOf(ProfileEmptyError);
  });

  it("refuses to make an archive a restore would refuse: more entries or bytes than the restore limits", async () => {
    const archiver = newArchiver(undefined, { maxEntries: 5 });
    await expect(archiver.archiveSession(profile)).rejects.toMatchObject({ name: "ArchiveTooLargeError", limit: "entries" });
    await expect(newArchiver(undefined, { maxBytes: 1024 }).archiveSession(profile)).rejects.toMatchObject({ name: "ArchiveTooLargeError", limit: "bytes" });
    // What a restore accepts, the archiver makes.
    const scan = await scanProfile(profile);
    const exact = newArchiver(undefined, { maxEntries: scan.kept.length, maxBytes: scan.keptBytes });
    const archive = await exact.archiveSession(profile);
    await exact.restoreSession(await readArchive(archive), path.join(dir, "exact-limits"));
    await disposeArchive(archive);
  });

  it("restores a kept file that compresses better than 1000 to 1 (64 MB of zeros)", async () => {
    const zeros = path.join(dir, "zeros-profile");
    await writeFakeProfile(zeros);
    await writeFile(path.join(zeros, "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000005.ldb"), Buffer.alloc(64 * 1024 * 1024));
    const archiver = newArchiver();
    const archive = await archiver.archiveSession(zeros);
    expect(archive.sizeBytes).toBeLessThan(200 * 1024);
    await archiver.restoreSession(await readArchive(archive), path.join(dir, "zeros-restored"));
    await disposeArchive(archive);
  });

  it("clears what a restore into the same target left when its process died (plaintext keys among it), and nothing else", async () => {
    const leftovers = [".restored.restore-0a1b2c3d4e5f", ".restored.restore-0a1b2c3d4e5f.tgz", ".restored.previous-aa11bb22cc33"];
    for (const name of leftovers) {
      if (name.endsWith(".tgz")) await writeFile(path.join(dir, name), "decrypted login data");
      else await writeFakeProfile(path.join(dir, name));
    }
    const neighbour = path.join(dir, ".restored-2.restore-0a1b2c3d4e5f.tgz"); // another profile's restore, under way
    await writeFile(neighbour, "not ours");
    const archiver = newArchiver();
    await archiver.restoreSession(await readArchive(await archiver.archiveSession(profile)), target);
    expect(leftovers.filter((name) => existsSync(path.join(dir, name)))).toEqual([]);
    expect(existsSync(neighbour)).toBe(true);
    expect(existsSync(path.join(target, "Default/Local Storage/leveldb/000003.log"))).toBe(true);
  });

  it("skips symlinks in the profile instead of archiving them", async () => {
    const { symlink } = await import("node:fs/promises");
    await symlink("/etc/passwd", path.join(profile, "Default", "Local Storage", "leveldb", "evil"));
    const archiver = newArchiver();
    const archived = await archiver.archiveSession(profile);
    await archiver.restoreSession(await readArchive(archived), target);
    expect(existsSync(path.join(target, "Default", "Local Storage", "leveldb", "evil"))).toBe(false);
  });

  describe("key rotation", () => {
    it("decrypts an archive made with an old key and re-archives with the current one", async () => {
      const oldKey = randomBytes(32).toString("base64");
      const newKey = randomBytes(32).toString("base64");
      const oldArchive = await newArchiver(createKeyRing(oldKey)).archiveSession(profile);

      const rotated = newArchiver(createKeyRing(newKey, [oldKey]));
      await rotated.restoreSession(await readArchive(oldArchive), target);
      const again = await rotated.archiveSession(target);
      expect(again.keyId).not.toBe(oldArchive.keyId);
      expect(again.keyId).toBe(createKeyRing(newKey).current.id);
    });
  });

  describe("refusals leave the target exactly as it was", () => {
    let before: Record<string, string>;
    const keys = newKeyRing();
    const archiver = newArchiver(keys, { maxEntries: 50, maxBytes: 1024 * 1024 });

    beforeEach(async () => {
      await writeFakeProfile(target);
      before = await snapshotTree(target);
    });

    const openFds = () => readdirSync("/proc/self/fd").length;

    async function expectRefused(archive: Buffer, errorClass: new (...args: never[]) => Error, match?: RegExp) {
      const fdsBefore = openFds();
      const attempt = archiver.restoreSession(archive, target);
      await expect(attempt).rejects.toBeInstanceOf(errorClass);
      if (match) await expect(attempt).rejects.toThrow(match);
      expect(await snapshotTree(target)).toEqual(before);
      // No staging directory or other debris beside the target.
      expect((await readdir(dir)).sort()).toEqual(["profile", "restored"]);
      expect(existsSync("/tmp/wavault-escape")).toBe(false);
      expect(openFds(), "a refused restore left a file descriptor open").toBe(fdsBefore);
    }

    const ok: CraftedEntry = { path: "Default/Local Storage/leveldb/000003.log", body: "ok" };

    it.each<[string, CraftedEntry, RegExp]>([
      ["an absolute path", { path: "/tmp/wavault-escape", body: "x" }, /absolute path/],
      ["a .. path", { path: "Default/../../wavault-escape", body: "x" }, /climbs out/],
      ["a symlink", { path: "Default/link", type: "SymbolicLink", linkpath: "/etc" }, /SymbolicLink/],
      ["a hardlink", { path: "Default/hard", type: "Link", linkpath: "/etc/passwd" }, /Link/],
      ["a character device", { path: "Default/dev", type: "CharacterDevice" }, /CharacterDevice/],
      ["a block device", { path: "Default/blk", type: "BlockDevice" }, /BlockDevice/],
      ["a FIFO", { path: "Default/fifo", type: "FIFO" }, /FIFO/],
    ])("refuses %s with UnsafeArchiveError, even after good entries", async (_label, bad, message) => {
      await expectRefused(craftArchive([ok, bad], keys), UnsafeArchiveError, message);
    });

    it("refuses a path that appears twice instead of overwriting it", async () => {
      await expectRefused(craftArchive([ok, { ...ok, body: "second" }], keys), UnsafeArchiveError, /duplicate/);
    });

    it("refuses a path that is both a file and a directory, in either order", async () => {
      const file = { path: "Default/x", body: "file" };
      await expectRefused(craftArchive([file, { path: "Default/x/y", body: "under a file" }], keys), UnsafeArchiveError);
      await expectRefused(craftArchive([{ path: "Default/x/", type: "Directory" }, file], keys), UnsafeArchiveError);
      await expectRefused(craftArchive([file, { path: "Default/x/", type: "Directory" }], keys), UnsafeArchiveError);
    });

    it("fails at once with LocalDiskError, nothing left behind, when the disk refuses a directory", async () => {
      // A target so deep that the staging path of a long (allowed) name passes PATH_MAX:
      // the filesystem's mkdir fails (ENAMETOOLONG) mid-unpack, and that must stop the
      // unpack, typed — not surface later as an unhandled rejection. Several MB after
      // it, so the unpack is still reading when the mkdir fails.
      let deep = dir;
      while (deep.length < 3_820) deep = path.join(deep, "p".repeat(100)); // 3,820–3,921 bytes
      const deepTarget = path.join(deep, "restored");
      await writeFakeProfile(deepTarget);
      const deepBefore = await snapshotTree(deepTarget);
      const tooLong = { path: `Default/${"d".repeat(250)}/`, type: "Directory" as const };
      const after = Array.from({ length: 8 }, (_, i) => ({ path: `Default/after-${i}`, body: randomBytes(1024 * 1024) }));
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", onUnhandled);
      try {
        const attempt = newArchiver(keys).restoreSession(craftArchive([ok, tooLong, ...after], keys), deepTarget);
        await expect(attempt).rejects.toBeInstanceOf(LocalDiskError);
        await expect(attempt).rejects.toThrow(/ENAMETOOLONG/);
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off("unhandledRejection", onUnhandled);
      }
      expect(unhandled).toEqual([]);
      expect(await snapshotTree(deepTarget)).toEqual(deepBefore);
      expect(await readdir(deep)).toEqual(["restored"]);
    });

    // It mounts a tmpfs with few inodes: skipped where that is not allowed (not root, say).
    it("names a disk out of inodes ENOSPC (Node's recursive mkdir says ENOENT), the target as it was", async (context) => {
      const small = path.join(dir, "small-disk");
      await mkdir(small);
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m,nr_inodes=1000", "tmpfs", small], { stdio: "ignore" });
      } catch {
        return context.skip();
      }
      try {
        const smallTarget = path.join(small, "restored");
        await writeFakeProfile(smallTarget);
        const smallBefore = await snapshotTree(smallTarget);
        // Room for the scratch file, the staging folder and a few more: not for the archive's
        // folders (folders only, so that a mkdir is what runs out).
        const { files, ffree } = statfsSync(small);
        execFileSync("mount", ["-o", `remount,nr_inodes=${files - ffree + 8}`, small]);
        const folders = Array.from({ length: 20 }, (_, i) => ({ path: `Default/folder-${i}/inner/`, type: "Directory" as const }));
        const attempt = archiver.restoreSession(craftArchive(folders, keys), smallTarget);
        await expect(attempt).rejects.toBeInstanceOf(LocalDiskError);
        await expect(attempt).rejects.toThrow(/ENOSPC: disk full/);
        expect(await snapshotTree(smallTarget)).toEqual(smallBefore);
        expect(await readdir(small)).toEqual(["restored"]);
      } finally {
        execFileSync("umount", ["--lazy", small]); // lazily: a descriptor left open must not keep it mounted
      }
    });

    it("refuses more entries than the limit (ArchiveTooLargeError)", async () => {
      const many = Array.from({ length: 51 }, (_, i) => ({ path: `Default/f${i}`, body: "x" }));
      await expectRefused(craftArchive(many, keys), ArchiveTooLargeError, /entries/);
    });

    it("refuses more uncompressed bytes than the limit, however well they compress (a bomb)", async () => {
      const bomb = [{ path: "Default/zeros", body: Buffer.alloc(2 * 1024 * 1024) }];
      const archive = craftArchive(bomb, keys);
      expect(archive.length).toBeLessThan(16 * 1024);
      await expectRefused(archive, ArchiveTooLargeError, /uncompressed bytes/);
    });

    it("refuses input that is no archive (ArchiveCorruptError)", async () => {
      await expectRefused(Buffer.from("definitely not an archive"), ArchiveCorruptError, /not a wavault/);
      await expectRefused(Buffer.alloc(0), ArchiveCorruptError);
    });

    it("refuses a truncated archive", async () => {
      const archive = await readArchive(await archiver.archiveSession(profile));
      await expectRefused(archive.subarray(0, archive.length - 100), ArchiveDecryptError);
      await expectRefused(archive.subarray(0, 20), ArchiveCorruptError, /truncated/);
    });

    it("refuses a flipped byte anywhere: the GCM tag fails (ArchiveDecryptError)", async () => {
      const archive = await readArchive(await archiver.archiveSession(profile));
      for (const offset of [6, 30, Math.floor(archive.length / 2), archive.length - 1]) {
        const flipped = Buffer.from(archive);
        flipped[offset]! ^= 0x01;
        const error = await archiver.restoreSession(flipped, target).catch((e: Error) => e);
        expect(error).toBeInstanceOf(offset === 6 ? ArchiveDecryptError : ArchiveDecryptError);
      }
      expect(await snapshotTree(target)).toEqual(before);
    });

    it("refuses an archive made with a key it does not hold", async () => {
      const archive = await readArchive(await newArchiver().archiveSession(profile));
      await expectRefused(archive, ArchiveKeyMissingError, /no configured key/);
    });

    it("refuses an archive whose checksum differs from the recorded one", async () => {
      const archive = await readArchive(await archiver.archiveSession(profile));
      const attempt = archiver.restoreSession(archive, target, { expectedSha256: "0".repeat(64) });
      await expect(attempt).rejects.toThrow(ArchiveCorruptError);
      expect(await snapshotTree(target)).toEqual(before);
    });

    it("refuses a sealed payload that is not gzip, or gzip that is not tar", async () => {
      await expectRefused(sealArchive(Buffer.from("plain text, no gzip"), keys), ArchiveCorruptError);
      await expectRefused(sealArchive(gzipSync(Buffer.from("gzip but no tar ".repeat(100))), keys), ArchiveCorruptError);
    });

    it("refuses a tar whose last entry is cut short", async () => {
      const { craftTar } = await import("../../helpers/crafted-archive");
      const tar = craftTar([ok, { path: "Default/big", body: Buffer.alloc(4096, 7) }]);
      await expectRefused(sealArchive(gzipSync(tar.subarray(0, 512 * 3 + 100)), keys), ArchiveCorruptError);
    });
  });

  describe("hasValidSession", () => {
    it("accepts a profile with WhatsApp Web's IndexedDB and localStorage", async () => {
      expect(hasValidSession(profile)).toBe(true);
    });

    it("rejects a missing dir, a cache-only profile and an empty IndexedDB", async () => {
      expect(hasValidSession(path.join(dir, "missing"))).toBe(false);
      await rm(path.join(profile, "Default", "IndexedDB"), { recursive: true });
      expect(hasValidSession(profile)).toBe(false);
      const idb = path.join(profile, "Default", "IndexedDB", "https_web.whatsapp.com_0.indexeddb.leveldb");
      await mkdir(idb, { recursive: true });
      await writeFile(path.join(idb, "000003.log"), "");
      expect(hasValidSession(profile)).toBe(false);
      await writeFile(path.join(idb, "000003.log"), await readFile(path.join(profile, "Local State")));
      expect(hasValidSession(profile)).toBe(true);
    });
  });
});
