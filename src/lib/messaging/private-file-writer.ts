import { open, rm, type FileHandle } from "node:fs/promises";

import { writeAll } from "./write-all";

const FLUSH_BYTES = 1024 * 1024;

/**
 * A new file only this process can read (0600, created exclusively), written through
 * one FileHandle: small writes are gathered into ~1 MB writes, every error surfaces
 * from the `await` that caused it, and `discard()` always leaves nothing behind.
 */
export class PrivateFileWriter {
  readonly path: string;
  readonly #handle: FileHandle;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #closed = false;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  /** Creates `path`; fails if it exists. */
  static async create(path: string): Promise<PrivateFileWriter> {
    return new PrivateFileWriter(path, await open(path, "wx", 0o600));
  }

  async write(bytes: Buffer): Promise<void> {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    if (this.#pendingBytes >= FLUSH_BYTES) await this.#flush();
  }

  /** Writes what is gathered and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#flush();
    } finally {
      this.#closed = true;
      await this.#handle.close();
    }
  }

  /** Closes (if open) and deletes the file, whatever state it is in. */
  async discard(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await this.#handle.close().catch(() => {});
    }
    await rm(this.path, { force: true });
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    await writeAll(this.#handle, pending);
  }
}
