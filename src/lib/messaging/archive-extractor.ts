import { randomBytes } from "node:crypto";
import { createReadStream, mkdirSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Parser, type ReadEntry } from "tar";

import { ArchiveCorruptError, ArchiveTooLargeError, UnsafeArchiveError } from "./archive-errors";

export interface ExtractLimits {
  /** At most this many tar entries (files and directories). */
  maxEntries: number;
  /** At most this many bytes of file content once unpacked. */
  maxBytes: number;
}

const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
/** Unpacked bytes allowed to wait for their write before the input pauses. */
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/** The entry's path relative to the target, or the reason it may not be extracted. */
function checkEntry(entry: ReadEntry, root: string): string | UnsafeArchiveError {
  const name = entry.path;
  if (!FILE_TYPES.has(entry.type) && entry.type !== "Directory") {
    return new UnsafeArchiveError(name, `${entry.type} entries are not allowed`);
  }
  if (name.length === 0 || name.includes("\0")) return new UnsafeArchiveError(name, "empty or NUL in path");
  if (name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) {
    return new UnsafeArchiveError(name, "absolute path");
  }
  const parts = name.split(/[\\/]/).filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) return new UnsafeArchiveError(name, "path climbs out with ..");
  const relative = parts.join("/");
  // Belt and braces: whatever the checks above missed must still resolve inside root.
  if (relative && !path.resolve(root, relative).startsWith(root + path.sep)) {
    return new UnsafeArchiveError(name, "path resolves outside the target");
  }
  return relative;
}

/**
 * Unpacks a tar (in gzip) from `gzipFile` into the empty directory `dir`, streaming, in
 * one pass, checking every entry before it is written: only plain files and
 * directories, only paths inside `dir`, each path once, within the entry and byte limits.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
function unpackChecked(gzipFile: string, dir: string, limits: ExtractLimits): Promise<{ entries: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    let entries = 0;
    let bytes = 0;
    let failure: Error | undefined;
    const writes: Promise<void>[] = [];
    const input = createReadStream(gzipFile, { highWaterMark: 1024 * 1024 });
    let inFlight = 0;
    let waitingForParser = false;
    const resumeIfClear = () => {
      if (!waitingForParser && inFlight <= MAX_IN_FLIGHT_BYTES && !failure) input.resume();
    };
    // Reject only once every write has settled, so the caller can delete `dir`.
    const fail = (error: Error) => {
      failure ??= error;
      void Promise.allSettled(writes).then(() => reject(failure));
    };
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        if (failure) return entry.resume();
        entries += 1;
        bytes += entry.size ?? 0;
        const checked = checkEntry(entry, dir);
        const refusal =
          (checked instanceof UnsafeArchiveError ? checked : undefined) ??
          (entries > limits.maxEntries ? new ArchiveTooLargeError("entries", limits.maxEntries) : undefined) ??
          (bytes > limits.maxBytes ? new ArchiveTooLargeError("bytes", limits.maxBytes) : undefined);
        if (refusal || typeof checked !== "string") {
          entry.resume();
          if (refusal) {
            failure ??= refusal;
            parser.abort(refusal);
          }
          return;
        }
        const destination = path.join(dir, checked);
        if (entry.type === "Directory") {
          mkdirSync(destination, { recursive: true, mode: 0o700 });
          entry.resume();
          return;
        }
        // A file is written in one call once its last byte is in: far cheaper than a
        // stream per file. The input pauses while too many bytes wait to be written.
        const chunks: Buffer[] = [];
        entry.on("data", (chunk: Buffer) => chunks.push(chunk));
        entry.on("end", () => {
          if (failure) return;
          const size = entry.size ?? 0;
          inFlight += size;
          if (inFlight > MAX_IN_FLIGHT_BYTES) input.pause();
          mkdirSync(path.dirname(destination), { recursive: true, mode: 0o700 });
          // "wx": a path that appears twice is refused instead of silently overwritten.
          const write = writeFile(destination, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), {
            flag: "wx",
            mode: 0o600,
          });
          const tracked = write
            .catch((error: NodeJS.ErrnoException) => {
              const refused = error.code === "EEXIST" ? new UnsafeArchiveError(entry.path, "duplicate path") : error;
              failure ??= refused;
              parser.abort(refused);
              throw refused;
            })
            .finally(() => {
              inFlight -= size;
              resumeIfClear();
            });
          tracked.catch(() => {}); // observed through `writes`; never an unhandled rejection
          writes.push(tracked);
        });
      },
    });
    const corrupt = (error: Error) =>
      fail(failure ?? new ArchiveCorruptError(`unreadable tar/gzip (${error.message})`, { cause: error }));
    parser.on("error", corrupt);
    parser.on("abort", corrupt);
    parser.on("close", () => {
      if (failure) return fail(failure);
      if (entries === 0) return fail(new ArchiveCorruptError("it holds no entries"));
      Promise.all(writes).then(() => resolve({ entries, bytes }), fail);
    });
    input.on("error", fail);
    input.on("data", (chunk) => {
      if (!parser.write(chunk as Buffer)) {
        waitingForParser = true;
        input.pause();
        parser.once("drain", () => {
          waitingForParser = false;
          resumeIfClear();
        });
      }
    });
    input.on("end", () => parser.end());
  });
}

/**
 * Extracts a tar (in gzip) from `gzipFile` into `targetDir` all or nothing: every entry
 * is checked and unpacked into a staging directory beside the target, which is swapped
 * in with renames only when the whole archive has passed. On any failure the staging
 * directory is deleted and the target is left exactly as it was.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
export async function extractArchiveAtomically(gzipFile: string, targetDir: string, limits: ExtractLimits) {
  const { staging, previous } = siblingPaths(targetDir);
  await mkdir(path.dirname(staging), { recursive: true });
  await mkdir(staging, { mode: 0o700 });
  let unpacked: { entries: number; bytes: number };
  try {
    unpacked = await unpackChecked(gzipFile, staging, limits);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  // Same parent, so both renames stay on one filesystem and each is atomic. Between
  // them the target is briefly absent; it never holds a half-written profile.
  let hadPrevious = true;
  try {
    await rename(targetDir, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    hadPrevious = false;
  }
  await rename(staging, targetDir);
  if (hadPrevious) await rm(previous, { recursive: true, force: true });
  return unpacked;
}

/** Scratch paths beside `targetDir` (same filesystem, so renames are atomic), hidden and unique. */
export function siblingPaths(targetDir: string) {
  const parent = path.dirname(path.resolve(targetDir));
  const prefix = path.join(parent, `.${path.basename(targetDir)}`);
  const suffix = randomBytes(6).toString("hex");
  return {
    staging: `${prefix}.restore-${suffix}`,
    previous: `${prefix}.previous-${suffix}`,
    plaintext: `${prefix}.restore-${suffix}.tgz`,
  };
}
