import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Header } from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ArchiveCorruptError, ArchiveTooLargeError, UnsafeArchiveError } from "../../../src/lib/messaging/archive-errors";
import { packProfile } from "../../../src/lib/messaging/profile-packer";
import { scanProfile } from "../../../src/lib/messaging/profile-scan";
import { craftTar, newArchiver, newKeyRing, sealArchive } from "../../helpers/crafted-archive";
import { snapshotTree, writeFakeProfile } from "../../helpers/fake-profile";

/** A full garbage collection, now (V8's gc, exposed at run time). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** A pax header block (per entry, or global) setting `key` to `value`. */
function paxEntry(type: "ExtendedHeader" | "GlobalExtendedHeader", key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`;
  let length = rest.length + 1;
  while (String(length).length + rest.length !== length) length = String(length).length + rest.length;
  const record = Buffer.from(`${length}${rest}`);
  const block = Buffer.alloc(512);
  new Header({ path: "PaxHeader", type, size: record.length, mode: 0o644, mtime: new Date(0) }).encode(block, 0);
  return Buffer.concat([block, record, Buffer.alloc((512 - (record.length % 512)) % 512)]);
}

/** Sets the type flag of the tar header at `offset` and fixes its checksum. */
function retype(tar: Buffer, offset: number, flag: string): void {
  tar.write(flag, offset + 156, "latin1");
  tar.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (const byte of tar.subarray(offset, offset + 512)) sum += byte;
  tar.write(`${sum.toString(8).padStart(6, "0")}\0 `, offset + 148, "latin1");
}

// Archives sealed under a key the archiver holds: decryption and the checksum pass, and
// only the checks on what is inside stand between them and the disk (an insider, a
// leaked old key). Each must be refused with a typed error, the target as it was.
describe("a restore of validly sealed but hostile content", () => {
  const keys = newKeyRing();
  const archiver = newArchiver(keys, { maxEntries: 5, maxBytes: 1024 * 1024 });
  let dir: string;
  let target: string;
  let before: Awaited<ReturnType<typeof snapshotTree>>;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-hostile-"));
    target = path.join(dir, "restored");
    await writeFakeProfile(target);
    before = await snapshotTree(target);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const expectRefused = async (payload: Buffer, type: new (...args: never[]) => Error, restorer = archiver) => {
    await expect(restorer.restoreSession(sealArchive(payload, keys), target)).rejects.toBeInstanceOf(type);
    expect(await snapshotTree(target)).toEqual(before);
    expect(await readdir(dir)).toEqual(["restored"]); // no staging or scratch left beside it
  };

  it("counts the bytes that come, not the size a global pax header claims", async () => {
    const big = 3 * 1024 * 1024;
    const tar = Buffer.concat([
      paxEntry("GlobalExtendedHeader", "size", "1"),
      paxEntry("ExtendedHeader", "size", String(big)),
      craftTar([{ path: "Default/big", body: Buffer.alloc(big, 0x41) }]),
    ]);
    await expectRefused(gzipSync(tar), ArchiveTooLargeError);
  });

  it("counts the bytes of a large entry, written as they come, the same way", async () => {
    const streaming = newArchiver(keys, { maxBytes: 16 * 1024 * 1024 });
    const big = 24 * 1024 * 1024; // above the 8 MB a restore holds of one file
    const tar = Buffer.concat([
      paxEntry("GlobalExtendedHeader", "size", "1"),
      paxEntry("ExtendedHeader", "size", String(big)),
      craftTar([{ path: "Default/big", body: Buffer.alloc(big, 0x41) }]),
    ]);
    await expectRefused(gzipSync(tar), ArchiveTooLargeError, streaming);
    // An honest large file restores byte for byte, without the restore holding it whole.
    const body = Buffer.concat([randomBytes(1024), Buffer.alloc(200 * 1024 * 1024)]);
    const archive = sealArchive(gzipSync(craftTar([{ path: "Default/IndexedDB/blob", body }])), keys);
    collectGarbage(); // the 200 MB tar it was made from must not drop out of the count meanwhile
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)), 2);
    try {
      await newArchiver(keys).restoreSession(archive, target);
    } finally {
      clearInterval(sampler);
    }
    expect((await readFile(path.join(target, "Default/IndexedDB/blob"))).equals(body)).toBe(true);
    // Held whole, it would be 200 MB; streamed, what is in flight plus garbage V8 has not collected yet.
    expect(peak).toBeLessThan(128 * 1024 * 1024);
  });

  it("refuses an entry whose bytes differ from its header's size, even within the limits", async () => {
    const tar = Buffer.concat([
      paxEntry("GlobalExtendedHeader", "size", "1"),
      paxEntry("ExtendedHeader", "size", "700"),
      craftTar([{ path: "Default/file", body: Buffer.alloc(700, 0x41) }]),
    ]);
    await expectRefused(gzipSync(tar), ArchiveCorruptError);
  });

  it("refuses zstd (which would throw inside node-tar on Node 20), and a bare tar", async () => {
    await expectRefused(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]), ArchiveCorruptError);
    await expectRefused(craftTar([{ path: "Default/file", body: "x" }]), ArchiveCorruptError);
  });

  it("counts every directory a deep path makes against the entry limit", async () => {
    const tar = Buffer.concat([paxEntry("ExtendedHeader", "path", `${"a/".repeat(200)}f`), craftTar([{ path: "x", body: "x" }])]);
    await expectRefused(gzipSync(tar), ArchiveTooLargeError);
  });

  it("refuses a name longer than a filesystem allows, and an overlong path, before creating anything", async () => {
    const longName = Buffer.concat([paxEntry("ExtendedHeader", "path", `Default/${"y".repeat(256)}`), craftTar([{ path: "x", body: "x" }])]);
    await expectRefused(gzipSync(longName), UnsafeArchiveError);
    const longPath = Buffer.concat([paxEntry("ExtendedHeader", "path", `Default/${`${"z".repeat(200)}/`.repeat(6)}f`), craftTar([{ path: "x", body: "x" }])]);
    await expectRefused(gzipSync(longPath), UnsafeArchiveError);
  });

  it("refuses a tar cut short between two entries (no end-of-archive blocks)", async () => {
    const profile = path.join(dir, "profile");
    await writeFakeProfile(profile);
    const members: Buffer[] = [];
    await packProfile(profile, (await scanProfile(profile)).kept, 6, async (member) => {
      members.push(member);
    });
    await rm(profile, { recursive: true });
    await expectRefused(Buffer.concat(members.slice(0, 3)), ArchiveCorruptError, newArchiver(keys));
    // The whole archive, end blocks included, restores.
    await newArchiver(keys).restoreSession(sealArchive(Buffer.concat(members), keys), target);
  });

  it("stops at the end-of-archive blocks: what follows is neither parsed nor held", async () => {
    // 128 MB of zeros after the end, a 130 KB archive: node-tar would buffer it all,
    // copying its buffer on every piece (minutes).
    const trailing = Buffer.concat([craftTar([{ path: "Default/ok", body: "ok" }]), Buffer.alloc(128 * 1024 * 1024)]);
    await archiver.restoreSession(sealArchive(gzipSync(trailing), keys), target);
    expect(await readFile(path.join(target, "Default/ok"), "utf8")).toBe("ok");
  }, 20_000);

  it("refuses entry types node-tar would skip unseen (sparse, volume header, unknown)", async () => {
    for (const flag of ["S", "V", "Z"]) {
      const tar = craftTar([{ path: "Default/ok", body: "ok" }, { path: "Default/odd", body: "abc" }]);
      retype(tar, 1024, flag);
      await expectRefused(gzipSync(tar), UnsafeArchiveError);
    }
  });

  it("queues a bounded number of disk operations, however many tiny entries come", async () => {
    const files = Array.from({ length: 20_000 }, (_, i) => ({ path: `Default/IndexedDB/e${i}`, body: "" }));
    const many = newArchiver(keys, { maxEntries: 50_000 });
    const archive = sealArchive(gzipSync(craftTar(files), { level: 9 }), keys);
    let peak = 0;
    const sampler = setInterval(() => {
      const pending = process.getActiveResourcesInfo().filter((name) => name.startsWith("FSReq")).length;
      peak = Math.max(peak, pending);
    }, 1);
    try {
      await many.restoreSession(archive, target);
    } finally {
      clearInterval(sampler);
    }
    expect((await readdir(path.join(target, "Default/IndexedDB"))).length).toBe(20_000);
    expect(peak).toBeLessThan(5_000);
  });

  it("restores many small files with a bounded number of files open at once", async () => {
    const files = Array.from({ length: 3_000 }, (_, i) => ({ path: `Default/IndexedDB/f${i}`, body: `${i}` }));
    const many = newArchiver(keys, { maxEntries: 10_000 });
    const openBefore = (await readdir("/proc/self/fd")).length;
    let peak = 0;
    const sampler = setInterval(() => {
      void readdir("/proc/self/fd").then((fds) => (peak = Math.max(peak, fds.length - openBefore)));
    }, 1);
    try {
      await many.restoreSession(sealArchive(gzipSync(craftTar(files)), keys), target);
    } finally {
      clearInterval(sampler);
    }
    expect((await readdir(path.join(target, "Default/IndexedDB"))).length).toBe(3_000);
    expect(peak).toBeLessThan(100);
  });
});
