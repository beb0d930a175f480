import { open } from "node:fs/promises";
import path from "node:path";
import { constants, deflateRawSync, gzip as gzipCallback, type ZlibOptions } from "node:zlib";
import { promisify } from "node:util";
import { Header, Pax } from "tar";

import { ProfileChangedError } from "./archive-errors";
import type { ProfileEntry } from "./profile-scan";

const gzip = promisify(gzipCallback);
const BLOCK = 512;
const PROBE_BYTES = 4 * 1024;
/** What a 4 KB sample deflated at level 1 keeps of its size, above which a file is
 * stored (already compressed), or Huffman-coded only (skewed bytes, few repeats). */
const ALREADY_COMPRESSED = 0.8;
const FEW_REPEATS = 0.5;
// libuv's pool has 4 threads by default; keeping them busy beat one task per core
// even on 2 cores (docs/benchmarks.md). Also the read-ahead window.
const PARALLEL = 4;

/**
 * Packs profile entries as a tar compressed into a series of gzip members, one per
 * entry, concatenated in order (RFC 1952 allows many members; gunzip and node-tar read
 * them as one stream). Per-member compression is what makes archiving fast: deflate
 * runs at only tens of MB/s, and most of a WhatsApp profile's login data is IndexedDB
 * that Chromium has already compressed with snappy, where deflate costs much and gains
 * little:
 *   - files deflate can shrink (LevelDB logs, manifests, localStorage) get the
 *     configured level;
 *   - files with few repeats but skewed bytes get Huffman coding only, at a fraction
 *     of level 1's cost;
 *   - already-compressed files (snappy data, media, random bytes) are stored: Huffman
 *     coding would make the snappy data ~10% smaller for twice the archive time and a
 *     slower restore (docs/benchmarks.md has the figures).
 * Entries are compressed in parallel (zlib runs in libuv's pool) and handed to `emit`
 * in order; a few files are read at a time, never the whole profile.
 */
export async function packProfile(
  root: string,
  entries: ProfileEntry[],
  level: number,
  emit: (member: Buffer) => Promise<void>,
): Promise<void> {
  // Members finish out of order; each is handed on (and dropped here) as soon as all
  // before it have been, through one chain so `emit` calls never overlap. A worker
  // takes an entry only within PARALLEL of the oldest one not yet handed on, so a slow
  // file never lets the others race ahead into memory; after any failure none starts.
  const done = new Map<number, Buffer>();
  let emitted = 0;
  let next = 0;
  let failed = false;
  let chain = Promise.resolve();
  let wake: (() => void)[] = [];
  const advanced = () => {
    const waiting = wake;
    wake = [];
    for (const resume of waiting) resume();
  };
  const worker = async () => {
    while (!failed && next < entries.length) {
      if (next - emitted >= PARALLEL) {
        await new Promise<void>((resume) => wake.push(resume));
        continue;
      }
      const index = next++;
      try {
        done.set(index, await packEntry(root, entries[index]!, level));
      } catch (error) {
        failed = true;
        advanced();
        throw error;
      }
      for (let member = done.get(emitted); member; member = done.get(emitted)) {
        done.delete(emitted++);
        const ready = member;
        chain = chain.then(() => emit(ready)).catch((error: unknown) => {
          failed = true;
          advanced();
          throw error;
        });
      }
      advanced();
      await chain; // the writer's pace is the packer's pace
    }
  };
  const parallel = Math.max(1, Math.min(PARALLEL, entries.length));
  const results = await Promise.allSettled(Array.from({ length: parallel }, worker));
  const rejected = results.find((result) => result.status === "rejected");
  if (rejected) {
    await chain.catch(() => {});
    throw rejected.reason;
  }
  await chain;
  await emit(await gzip(Buffer.alloc(2 * BLOCK), { level })); // end-of-archive blocks
}

async function packEntry(root: string, entry: ProfileEntry, level: number): Promise<Buffer> {
  if (entry.type === "dir") return gzip(tarHeader(entry, 0), { level });
  // One buffer holds the tar header, the file and its padding: no copies. Read exactly
  // the scanned size: a file that grew meanwhile is caught by the archiver's change
  // check, one that shrank fails here.
  const header = tarHeader(entry, entry.size);
  const padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
  const tar = Buffer.alloc(header.length + entry.size + padding);
  header.copy(tar);
  const handle = await open(path.join(root, entry.path), "r").catch((error: NodeJS.ErrnoException) => {
    throw error.code === "ENOENT" ? new ProfileChangedError(entry.path) : error;
  });
  try {
    const { bytesRead } = await handle.read(tar, header.length, entry.size, 0);
    if (bytesRead !== entry.size) throw new ProfileChangedError(entry.path);
  } finally {
    await handle.close();
  }
  const body = tar.subarray(header.length, header.length + entry.size);
  return gzip(tar, { ...optionsFor(body, level), chunkSize: chunkSizeFor(tar.length) });
}

/**
 * Node's async zlib hands work to the pool one output chunk at a time: chunks as large
 * as the output cut the round trips, and no larger, since each chunk stays allocated
 * until it is collected (1 MB chunks for 200 KB files left 100+ MB of garbage).
 */
function chunkSizeFor(inputBytes: number): number {
  return Math.min(1024 * 1024, Math.max(16 * 1024, inputBytes + 1024));
}

/** How to compress a file's bytes, from how well a sample of them deflates at level 1. */
export function optionsFor(body: Buffer, level: number): ZlibOptions {
  if (body.length < PROBE_BYTES) return { level };
  const sample = body.subarray(0, PROBE_BYTES);
  const ratio = deflateRawSync(sample, { level: 1 }).length / sample.length;
  if (ratio > ALREADY_COMPRESSED) return { level: 0 };
  if (ratio > FEW_REPEATS) return { level: 1, strategy: constants.Z_HUFFMAN_ONLY };
  return { level };
}

/** A ustar header, preceded by a pax header when the path is too long for ustar. */
function tarHeader(entry: ProfileEntry, size: number): Buffer {
  const fields = {
    path: entry.type === "dir" ? `${entry.path}/` : entry.path,
    type: entry.type === "dir" ? ("Directory" as const) : ("File" as const),
    size,
    mode: entry.type === "dir" ? 0o700 : 0o600,
    mtime: new Date(Math.floor(entry.mtimeMs)),
  };
  const block = Buffer.alloc(BLOCK);
  const needPax = new Header(fields).encode(block, 0);
  return needPax ? Buffer.concat([new Pax(fields).encode(), block]) : block;
}
