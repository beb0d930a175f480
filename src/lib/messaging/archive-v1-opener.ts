import { createDecipheriv } from "node:crypto";

import { ArchiveCorruptError, ArchiveDecryptError } from "./archive-errors";
import type { ArchiveHeader } from "./archive-format";
import type { ArchiveKey } from "./archive-keys";
import { ByteQueue } from "./byte-queue";

const TAG_BYTES = 16;

/**
 * Opens a version 1 body, one AES-256-GCM stream with its tag at the very end (archives
 * saved before version 2 still restore). Its plaintext is NOT authenticated until
 * `final` returns: the caller must keep it away from anything that matters until then.
 */
export class V1BodyOpener {
  readonly authenticatesAsItGoes = false;
  readonly #header: ArchiveHeader;
  readonly #decipher;
  /** The last bytes seen, which may be the tag. */
  readonly #held = new ByteQueue();

  constructor(key: ArchiveKey, header: ArchiveHeader) {
    this.#header = header;
    this.#decipher = createDecipheriv("aes-256-gcm", key.key, header.nonce);
    this.#decipher.setAAD(header.bytes);
  }

  /** Takes ciphertext; returns its plaintext, minus the last 16 bytes seen (maybe the tag). */
  update(sealed: Buffer): Buffer[] {
    this.#held.push(sealed);
    if (this.#held.length <= TAG_BYTES) return [];
    return this.#held.take(this.#held.length - TAG_BYTES).map((piece) => this.#decipher.update(piece));
  }

  /**
   * Checks the tag; returns the last plaintext.
   * @throws ArchiveCorruptError when not even a tag is left; ArchiveDecryptError when it fails.
   */
  final(): Buffer[] {
    if (this.#held.length < TAG_BYTES) throw new ArchiveCorruptError("truncated");
    this.#decipher.setAuthTag(this.#held.takeJoined(TAG_BYTES));
    try {
      return [this.#decipher.final()];
    } catch (error) {
      throw new ArchiveDecryptError(this.#header.keyId, "authentication failed (wrong key, or the bytes were changed)", {
        cause: error,
      });
    }
  }
}
