import { createHash, type CipherGCM } from "node:crypto";

import { createArchiveCipher, createHeader } from "./archive-format";
import type { ArchiveKey } from "./archive-keys";
import { PrivateFileWriter } from "./private-file-writer";

/**
 * Writes a new archive under `key` into a private file: the header, then the body
 * enciphered as it comes, then the GCM tag — counting and hashing every byte written.
 * `discard()` leaves nothing behind.
 */
export class ArchiveFileWriter {
  readonly #out: PrivateFileWriter;
  readonly #cipher: CipherGCM;
  readonly #hash = createHash("sha256");
  #sizeBytes = 0;

  private constructor(out: PrivateFileWriter, cipher: CipherGCM) {
    this.#out = out;
    this.#cipher = cipher;
  }

  /** Creates `file` (it must not exist) and writes the header. */
  static async create(file: string, key: ArchiveKey): Promise<ArchiveFileWriter> {
    const header = createHeader(key);
    const writer = new ArchiveFileWriter(await PrivateFileWriter.create(file), createArchiveCipher(key, header));
    try {
      await writer.#write(header.bytes);
    } catch (error) {
      await writer.discard();
      throw error;
    }
    return writer;
  }

  get path(): string {
    return this.#out.path;
  }

  /** Enciphers and writes a piece of the body (gzip of the tar). */
  writeBody(plaintext: Buffer): Promise<void> {
    return this.#write(this.#cipher.update(plaintext));
  }

  /** Writes the last of the body and the tag, closes the file; its size and SHA-256. */
  async finish(): Promise<{ sizeBytes: number; sha256: string }> {
    await this.#write(this.#cipher.final());
    await this.#write(this.#cipher.getAuthTag());
    await this.#out.close();
    return { sizeBytes: this.#sizeBytes, sha256: this.#hash.digest("hex") };
  }

  discard(): Promise<void> {
    return this.#out.discard();
  }

  #write(bytes: Buffer): Promise<void> {
    this.#hash.update(bytes);
    this.#sizeBytes += bytes.length;
    return this.#out.write(bytes);
  }
}
