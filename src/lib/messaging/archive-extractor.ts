import { randomBytes } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { Parser, Unpack, type ReadEntry } from "tar";

import { ArchiveCorruptError, ArchiveTooLargeError, UnsafeArchiveError } from "./archive-errors";

export interface ExtractLimits {
  /** At most this many tar entries (files and directories). */
  maxEntries: number;
  /** At most this many bytes of file content once unpacked. */
  maxBytes: number;
}

const PLAIN_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory"]);

/** Why an entry may not be extracted, or null when it is a plain file or directory inside the target. */
function refuseEntry(entry: ReadEntry): UnsafeArchiveError | null {
  const name = entry.path;
  if (!PLAIN_TYPES.has(entry.type)) return new UnsafeArchiveError(name, `${entry.type} entries are not allowed`);
  if (name.length === 0 || name.includes("\0")) return new UnsafeArchiveError(name, "empty or NUL in path");
  if (name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) {
    return new UnsafeArchiveError(name, "absolute path");
  }
  if (name.split(/[\\/]/).includes("..")) return new UnsafeArchiveError(name, "path climbs out with ..");
  return null;
}

/**
 * Reads the whole tar (in gzip) without writing anything and refuses it at the first
 * unsafe entry or exceeded limit. Every entry header is seen before a single byte is
 * extracted: the security check of restoreSession.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
export function inspectArchive(gzip: Buffer, limits: ExtractLimits): Promise<{ entries: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    let entries = 0;
    let bytes = 0;
    let failure: Error | undefined;
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        entry.resume();
        if (failure) return;
        entries += 1;
        bytes += entry.size ?? 0;
        failure =
          refuseEntry(entry) ??
          (entries > limits.maxEntries ? new ArchiveTooLargeError("entries", limits.maxEntries) : undefined) ??
          (bytes > limits.maxBytes ? new ArchiveTooLargeError("bytes", limits.maxBytes) : undefined);
        if (failure) parser.abort(failure);
      },
    });
    const fail = (error: Error) => {
      if (failure) return reject(failure);
      reject(new ArchiveCorruptError(`unreadable tar/gzip (${error.message})`, { cause: error }));
    };
    parser.on("error", fail);
    parser.on("abort", fail);
    parser.on("close", () => {
      if (failure) return reject(failure);
      if (entries === 0) return reject(new ArchiveCorruptError("it holds no entries"));
      resolve({ entries, bytes });
    });
    parser.end(gzip);
  });
}

/** Unpacks an inspected tar (in gzip) into an empty directory. */
function unpackInto(gzip: Buffer, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const unpack = new Unpack({ cwd: dir, strict: true, preservePaths: false, preserveOwner: false });
    unpack.on("error", (error: Error) => reject(new ArchiveCorruptError(`extraction failed (${error.message})`, { cause: error })));
    unpack.on("close", () => resolve());
    unpack.end(gzip);
  });
}

/**
 * Extracts a tar (in gzip) into `targetDir` all or nothing: inspect every entry first,
 * unpack into a staging directory beside the target, then swap it in with renames.
 * On any failure the target is left exactly as it was.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
export async function extractArchiveAtomically(gzip: Buffer, targetDir: string, limits: ExtractLimits) {
  const inspected = await inspectArchive(gzip, limits);
  const parent = path.dirname(path.resolve(targetDir));
  const base = path.basename(targetDir);
  const suffix = randomBytes(6).toString("hex");
  const staging = path.join(parent, `.${base}.restore-${suffix}`);
  const previous = path.join(parent, `.${base}.previous-${suffix}`);

  await mkdir(parent, { recursive: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    await unpackInto(gzip, staging);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  // Same parent, so both renames stay on one filesystem and are atomic each. Between
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
  return inspected;
}
