import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { Parser, type ReadEntry } from "tar";

import { concurrencyLimit } from "../system/concurrency-limit";
import { makeDirectory } from "../system/make-directory";
import { ArchiveCorruptError, ArchiveTooLargeError, UnsafeArchiveError } from "./archive-errors";
import { checkEntry } from "./tar-entry-check";
import { writeAll } from "./write-all";

export interface ExtractLimits {
  /** At most this many tar entries (files and directories). */
  maxEntries: number;
  /** At most this many bytes of file content once unpacked. */
  maxBytes: number;
}

/** Unpacked bytes allowed to wait for their write before the input pauses. */
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/**
 * What each entry counts in flight at least: an empty file or a directory costs a
 * queued mkdir and write all the same, so the input pauses by entries too (~2,000).
 */
const ENTRY_IN_FLIGHT_BYTES = 4 * 1024;
/** Files written at once: each holds a descriptor, and a profile may hold tens of thousands of files. */
const MAX_OPEN_FILES = 16;
/**
 * The gzip input goes to the parser this much at a time: gunzip inflates each piece
 * whole before the parser hands anything on, and deflate grows 1 KB into up to 1 MB, so
 * the piece is what bounds the bytes in memory (~16 MB on top of MAX_IN_FLIGHT_BYTES).
 */
const PARSER_SLICE_BYTES = 16 * 1024;
/** What every archive's plaintext starts with: the first gzip member's magic number. */
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * Unpacks a tar (in gzip) from `gzipFile` into the empty directory `dir`, streaming, in
 * one pass, checking every entry before it is written: only plain files and
 * directories, only paths inside `dir`, each path once and never both a file and a
 * directory, within the entry and byte limits — counted as unpacked (every directory
 * made, its parents included; every byte received, whatever a header declared) — and
 * only a whole archive: gzip, through the tar's end-of-archive blocks.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
export function unpackChecked(gzipFile: string, dir: string, limits: ExtractLimits): Promise<{ entries: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    let entries = 0;
    let bytes = 0;
    let failure: Error | undefined;
    const writes: Promise<void>[] = [];
    const files = new Set<string>();
    const dirs = new Set<string>([""]);
    const input = createReadStream(gzipFile, { highWaterMark: 1024 * 1024 });
    let inFlight = 0;
    let waitingForParser = false;
    let sniffed = false;
    let sawEnd = false;
    /** Called with the failure, once: work that would otherwise wait for ever. */
    const onFail: ((error: Error) => void)[] = [];

    // The first failure wins. Stop reading at once (and free the file descriptor);
    // reject once every started write has settled, so the caller can delete `dir`.
    const fail = (error: Error) => {
      if (failure) return;
      failure = error;
      input.destroy();
      parser.abort(new Error(error.message)); // node-tar rewrites the code of the error it is given
      for (const stop of onFail) stop(error);
      void Promise.allSettled(writes).then(() => reject(failure));
    };
    /** What is read but not yet given to the parser; the input stays paused meanwhile. */
    let pending: Buffer | null = null;
    let inputEnded = false;
    let parserEnded = false;
    /** Feeds the parser slice by slice while nothing holds it back; then reads on, or ends. */
    const resumeIfClear = () => {
      while (!failure && !waitingForParser && inFlight <= MAX_IN_FLIGHT_BYTES) {
        // Past the end-of-archive blocks nothing is read: node-tar would keep buffering
        // whatever follows (copying it each time), and no limit counts it.
        if (sawEnd) {
          pending = null;
          input.destroy();
          return settle();
        }
        if (!pending) {
          if (!inputEnded) input.resume();
          else if (!parserEnded) {
            parserEnded = true;
            feed();
          }
          return;
        }
        const slice = pending.subarray(0, PARSER_SLICE_BYTES);
        pending = pending.length > slice.length ? pending.subarray(slice.length) : null;
        if (!feed(slice)) {
          waitingForParser = true;
          parser.once("drain", () => {
            waitingForParser = false;
            resumeIfClear();
          });
        }
      }
    };
    /**
     * Records `relative` as a directory, with its parents; each new one counts as an
     * entry (a deep path makes many). False if a file holds one of those paths.
     */
    const claimDir = (relative: string): boolean => {
      for (let at = relative; at && !dirs.has(at); at = path.posix.dirname(at) === "." ? "" : path.posix.dirname(at)) {
        if (files.has(at)) return false;
        dirs.add(at);
        entries += 1;
      }
      return true;
    };
    const overLimit = () =>
      entries > limits.maxEntries
        ? new ArchiveTooLargeError("entries", limits.maxEntries)
        : bytes > limits.maxBytes
          ? new ArchiveTooLargeError("bytes", limits.maxBytes)
          : null;

    const accept = (entry: ReadEntry): string | Error => {
      const checked = checkEntry(entry, dir);
      if (checked instanceof Error) return checked;
      // A header's size is checked first (a bomb is refused before it is read); the bytes
      // that really come are counted as they come (see onReadEntry).
      if ((entry.size ?? 0) > limits.maxBytes - bytes) return new ArchiveTooLargeError("bytes", limits.maxBytes);
      if (entry.type === "Directory") {
        if (files.has(checked)) return new UnsafeArchiveError(entry.path, "path is also a file");
        if (dirs.has(checked)) entries += 1; // named again: still an entry
        else claimDir(checked);
        return overLimit() ?? checked;
      }
      entries += 1;
      if (files.has(checked) || dirs.has(checked)) return new UnsafeArchiveError(entry.path, "duplicate path");
      const parent = path.posix.dirname(checked);
      if (!claimDir(parent === "." ? "" : parent)) return new UnsafeArchiveError(entry.path, "a parent is a file");
      files.add(checked);
      return overLimit() ?? checked;
    };

    const writeEntry = (destination: string, chunks: Buffer[], received: number) => {
      const size = Math.max(received, ENTRY_IN_FLIGHT_BYTES);
      inFlight += size;
      // A file (up to MAX_IN_FLIGHT_BYTES) is written in one writev once its last byte is
      // in: far cheaper than a stream per file. "wx" never overwrites; the checks above make a clash impossible.
      track(
        makeDir(path.dirname(destination))
          .then(() => withOpenFile(() => writeNewFile(destination, chunks)))
          .finally(() => {
            inFlight -= size;
            resumeIfClear();
          }),
      );
    };
    /**
     * A file larger than the in-flight budget is written as its bytes come, so a restore
     * never holds one whole (a media blob, or a hostile archive's one huge entry).
     */
    const streamEntry = (entry: ReadEntry, destination: string) => {
      const opening = makeDir(path.dirname(destination)).then(() => open(destination, "wx", 0o600));
      let written: Promise<unknown> = opening;
      let received = 0;
      const ended = new Promise<void>((resolve, reject) => {
        onFail.push(reject); // the entry never ends once the unpack has failed
        entry.on("end", () =>
          received === entry.size ? resolve() : reject(new ArchiveCorruptError(`entry ${JSON.stringify(entry.path)} is not the size its header says`)),
        );
      });
      ended.catch(() => {}); // awaited below, perhaps only after it failed
      entry.on("data", (chunk: Buffer) => {
        if (failure) return;
        received += chunk.length;
        bytes += chunk.length;
        if (bytes > limits.maxBytes) return fail(new ArchiveTooLargeError("bytes", limits.maxBytes));
        inFlight += chunk.length;
        written = written.then(async () => {
          try {
            await writeAll(await opening, [chunk]);
          } finally {
            inFlight -= chunk.length;
            resumeIfClear();
          }
        });
        written.catch((error: Error) => fail(error)); // a failed write stops the unpack at once
      });
      track(
        (async () => {
          const handle = await opening;
          try {
            await ended;
            await written;
          } finally {
            await written.catch(() => {});
            await handle.close().catch(() => {});
          }
        })(),
      );
    };
    /** Each directory is made once (with its parents), however many files go into it. */
    const madeDirs = new Map<string, Promise<void>>();
    const makeDir = (absolute: string): Promise<void> => {
      let made = madeDirs.get(absolute);
      if (!made) {
        made = makeDirectory(absolute, 0o700);
        madeDirs.set(absolute, made);
      }
      return made;
    };
    /** Runs a write once fewer than MAX_OPEN_FILES are under way (the rest wait, their bytes counted in flight). */
    const withOpenFile = concurrencyLimit(MAX_OPEN_FILES);
    /** Every write or mkdir: its failure fails the unpack at once, and is never an unhandled rejection. */
    const track = (work: Promise<void>) => {
      const tracked = work.catch((error: Error) => {
        fail(error);
        throw error;
      });
      tracked.catch(() => {}); // observed through `writes`
      writes.push(tracked);
    };

    const parser = new Parser({
      strict: true,
      // Gzip only (checked below as well): node-tar would otherwise take zstd or brotli
      // by their looks, and Node 20 has no zstd (a throw from inside its write).
      zstd: false,
      brotli: false,
      // Not node-tar's default of 1000: a kept file of zeros compresses further, and
      // bombs are stopped by the limits on what is unpacked (accept), counted on input
      // that has already passed the checksum and the GCM tag.
      maxDecompressionRatio: Infinity,
      onReadEntry: (entry) => {
        if (failure) return entry.resume();
        const accepted = accept(entry);
        if (accepted instanceof Error) {
          entry.resume();
          return fail(accepted);
        }
        const destination = path.join(dir, accepted);
        if (entry.type === "Directory") {
          if (accepted) {
            inFlight += ENTRY_IN_FLIGHT_BYTES;
            track(
              makeDir(destination).finally(() => {
                inFlight -= ENTRY_IN_FLIGHT_BYTES;
                resumeIfClear();
              }),
            );
          }
          return entry.resume();
        }
        if ((entry.size ?? 0) > MAX_IN_FLIGHT_BYTES) return streamEntry(entry, destination);
        const chunks: Buffer[] = [];
        let received = 0;
        entry.on("data", (chunk: Buffer) => {
          if (failure) return;
          received += chunk.length;
          bytes += chunk.length;
          // Counted as received: a header's size can lie (a global pax header's, say).
          if (bytes > limits.maxBytes) return fail(new ArchiveTooLargeError("bytes", limits.maxBytes));
          chunks.push(chunk);
        });
        entry.on("end", () => {
          if (failure) return;
          if (received !== entry.size) return fail(new ArchiveCorruptError(`entry ${JSON.stringify(entry.path)} is not the size its header says`));
          writeEntry(destination, chunks, received);
        });
      },
    });
    const corrupt = (error: Error) =>
      fail(new ArchiveCorruptError(`unreadable tar/gzip (${error.message})`, { cause: error }));
    parser.on("error", corrupt);
    parser.on("abort", corrupt);
    // Entries node-tar skips by itself (sparse files, tape volume headers, unknown types,
    // oversized pax headers) would be left out of the profile unseen: refused instead.
    parser.on("ignoredEntry", (entry: ReadEntry) => fail(new UnsafeArchiveError(entry.path, `${entry.type} entries are not allowed`)));
    // The end-of-archive blocks, which every archive ends with: without them it was cut
    // short, even if exactly between two entries.
    parser.on("eof", () => (sawEnd = true));
    /** The tar's end (or the input's): once every write is done, the unpack is. */
    let settled = false;
    const settle = () => {
      if (failure || settled) return;
      settled = true;
      if (entries === 0) return fail(new ArchiveCorruptError("it holds no entries"));
      if (!sawEnd) return fail(new ArchiveCorruptError("the tar ends before its end-of-archive blocks"));
      Promise.all(writes).then(() => resolve({ entries, bytes }), fail);
    };
    parser.on("close", settle);
    /** Feeds the parser; anything it throws (rather than emits) fails the unpack too. */
    const feed = (chunk?: Buffer): boolean => {
      try {
        return chunk ? parser.write(chunk) : (parser.end(), true);
      } catch (error) {
        corrupt(error instanceof Error ? error : new Error(String(error)));
        return true;
      }
    };
    input.on("error", fail);
    input.on("data", (data) => {
      const chunk = data as Buffer;
      input.pause();
      if (failure) return;
      if (!sniffed) {
        sniffed = true;
        if (chunk.length < GZIP_MAGIC.length || !chunk.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) {
          return fail(new ArchiveCorruptError("it is not gzip"));
        }
      }
      pending = chunk;
      resumeIfClear();
    });
    input.on("end", () => {
      inputEnded = true;
      resumeIfClear();
    });
  });
}

/** Creates `file` (never over an existing one) and writes `chunks` into it without joining them. */
async function writeNewFile(file: string, chunks: Buffer[]): Promise<void> {
  const handle = await open(file, "wx", 0o600);
  try {
    await writeAll(handle, chunks);
  } catch (error) {
    await handle.close().catch(() => {}); // the write's error is the one worth reporting
    throw error;
  }
  await handle.close();
}
