import { mkdir, open } from "node:fs/promises";
import path from "node:path";
import { Parser, type ReadEntry } from "tar";

import { ArchiveCorruptError, ArchiveTooLargeError, UnsafeArchiveError } from "./archive-errors";
import { writeAll } from "./write-all";

export interface ExtractLimits {
  /** At most this many tar entries (files and directories). */
  maxEntries: number;
  /** At most this many bytes of file content once unpacked. */
  maxBytes: number;
}

const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
/** Unpacked bytes allowed to wait for their write before `write` makes the caller wait. */
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
 * Unpacks a tar (in gzip), fed to it piece by piece, into the empty directory `dir`,
 * checking every entry before it is written: only plain files and directories, only
 * paths inside `dir`, each path once and never both a file and a directory, within the
 * entry and byte limits. It trusts its input no further than that: feed it only
 * authenticated bytes, and delete `dir` after any failure (once `abort` has resolved).
 */
export class CheckedUnpacker {
  readonly #dir: string;
  readonly #limits: ExtractLimits;
  readonly #parser: Parser;
  /** Settles when the parser has read everything it was given, or on the first failure. */
  readonly #parsed: Promise<void>;
  #stopParsing!: () => void;
  #failure: Error | undefined;
  #entries = 0;
  #bytes = 0;
  readonly #files = new Set<string>();
  readonly #dirs = new Set<string>([""]);
  readonly #writes: Promise<void>[] = [];
  #inFlight = 0;
  #parserClogged = false;
  #waiting: { resume: () => void; fail: (error: Error) => void }[] = [];

  constructor(dir: string, limits: ExtractLimits) {
    this.#dir = dir;
    this.#limits = limits;
    this.#parsed = new Promise((resolve) => (this.#stopParsing = resolve));
    this.#parser = new Parser({ strict: true, onReadEntry: (entry) => this.#onEntry(entry) });
    const corrupt = (error: Error) =>
      this.#fail(new ArchiveCorruptError(`unreadable tar/gzip (${error.message})`, { cause: error }));
    this.#parser.on("error", corrupt);
    this.#parser.on("abort", corrupt);
    this.#parser.on("close", () => this.#stopParsing());
  }

  /**
   * Feeds the next bytes; resolves when more may be fed (the parser and the file writes
   * have room), so a caller that awaits it holds at most ~8 MB.
   * @throws the first failure: UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError, an I/O error
   */
  async write(bytes: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (!this.#parser.write(bytes) && !this.#parserClogged) {
      this.#parserClogged = true;
      this.#parser.once("drain", () => {
        this.#parserClogged = false;
        this.#resumeIfClear();
      });
    }
    if (this.#failure) throw this.#failure;
    if (this.#parserClogged || this.#inFlight > MAX_IN_FLIGHT_BYTES) {
      await new Promise<void>((resume, fail) => this.#waiting.push({ resume, fail }));
    }
  }

  /**
   * No more bytes: resolves once every file is written.
   * @throws as `write` does, and ArchiveCorruptError when the archive held no entries.
   */
  async end(): Promise<{ entries: number; bytes: number }> {
    if (!this.#failure) this.#parser.end();
    await this.#parsed;
    if (!this.#failure && this.#entries === 0) this.#fail(new ArchiveCorruptError("it holds no entries"));
    await Promise.allSettled(this.#writes);
    if (this.#failure) throw this.#failure;
    return { entries: this.#entries, bytes: this.#bytes };
  }

  /** Stops unpacking; resolves once every write it started has settled, so `dir` can go. */
  async abort(reason: Error): Promise<void> {
    this.#fail(reason);
    await Promise.allSettled(this.#writes);
  }

  /** The first failure wins: parsing stops, waiting writers are told, no new file starts. */
  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#parser.abort(error);
    this.#stopParsing();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const writer of waiting) writer.fail(error);
  }

  #resumeIfClear(): void {
    if (this.#failure || this.#parserClogged || this.#inFlight > MAX_IN_FLIGHT_BYTES) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const writer of waiting) writer.resume();
  }

  #onEntry(entry: ReadEntry): void {
    if (this.#failure) return void entry.resume();
    const accepted = this.#accept(entry);
    if (accepted instanceof Error) {
      entry.resume();
      return this.#fail(accepted);
    }
    const destination = path.join(this.#dir, accepted);
    if (entry.type === "Directory") {
      if (accepted) this.#track(mkdir(destination, { recursive: true, mode: 0o700 }).then(() => {}));
      return void entry.resume();
    }
    const chunks: Buffer[] = [];
    entry.on("data", (chunk: Buffer) => chunks.push(chunk));
    entry.on("end", () => this.#failure || this.#writeFile(entry.size ?? 0, destination, chunks));
  }

  /** Counts and checks an entry: its path relative to `dir`, or why it is refused. */
  #accept(entry: ReadEntry): string | Error {
    this.#entries += 1;
    this.#bytes += entry.size ?? 0;
    const checked = checkEntry(entry, this.#dir);
    if (checked instanceof Error) return checked;
    if (this.#entries > this.#limits.maxEntries) return new ArchiveTooLargeError("entries", this.#limits.maxEntries);
    if (this.#bytes > this.#limits.maxBytes) return new ArchiveTooLargeError("bytes", this.#limits.maxBytes);
    if (entry.type === "Directory") {
      return this.#files.has(checked) || !this.#claimDir(checked) ? new UnsafeArchiveError(entry.path, "path is also a file") : checked;
    }
    if (this.#files.has(checked) || this.#dirs.has(checked)) return new UnsafeArchiveError(entry.path, "duplicate path");
    const parent = path.posix.dirname(checked);
    if (!this.#claimDir(parent === "." ? "" : parent)) return new UnsafeArchiveError(entry.path, "a parent is a file");
    this.#files.add(checked);
    return checked;
  }

  /** Records `relative` as a directory (with its parents); false if a file holds that path. */
  #claimDir(relative: string): boolean {
    for (let at = relative; at && !this.#dirs.has(at); at = path.posix.dirname(at) === "." ? "" : path.posix.dirname(at)) {
      if (this.#files.has(at)) return false;
      this.#dirs.add(at);
    }
    return true;
  }

  /** A file is written in one writev once its last byte is in: far cheaper than a stream per file. */
  #writeFile(size: number, destination: string, chunks: Buffer[]): void {
    this.#inFlight += size;
    this.#track(
      mkdir(path.dirname(destination), { recursive: true, mode: 0o700 })
        .then(() => writeNewFile(destination, chunks))
        .finally(() => {
          this.#inFlight -= size;
          this.#resumeIfClear();
        }),
    );
  }

  #track(write: Promise<void>): void {
    this.#writes.push(write.catch((error: Error) => this.#fail(error)));
  }
}

/** Creates `file` (never over an existing one: "wx") and writes `chunks` into it without joining them. */
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
