import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";

import { ArchiveCorruptError, ArchiveDecryptError } from "./archive-errors";
import { createHeader, type ArchiveHeader } from "./archive-format";
import type { ArchiveKey } from "./archive-keys";
import { ByteQueue } from "./byte-queue";

/**
 * Format version 2's body: the plaintext cut into segments of `segmentBytes` (the last
 * may be shorter, even empty), each sealed with AES-256-GCM on its own (its ciphertext,
 * then its 16-byte tag). This is the STREAM construction (Hoang, Reyhanitabar, Rogaway,
 * Vizár, 2015):
 *   - each archive has its own key, HKDF-SHA256(key, salt from the header), so the
 *     segment nonces can be a plain counter without ever repeating under one key;
 *   - a segment's nonce is its index and a flag set only on the last one, so segments
 *     cannot be reordered, dropped or repeated, and an archive cut at a segment
 *     boundary fails (its new last segment was not sealed as the last);
 *   - the header is every segment's additional data.
 * A reader authenticates a segment before it hands on a byte of it, and holds at most
 * one segment to do so.
 */
const TAG_BYTES = 16;
const KEY_INFO = "wavault session archive v2";

function archiveKeyOf(key: ArchiveKey, header: ArchiveHeader): Buffer {
  return Buffer.from(hkdfSync("sha256", key.key, header.nonce, KEY_INFO, 32));
}

function segmentNonce(index: number, last: boolean): Buffer {
  if (index >= 2 ** 32) throw new Error("an archive holds at most 2^32 segments");
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(index, 4);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Seals plaintext into version 2 segments as it comes; `header.bytes` goes first. */
export class ArchiveSealer {
  readonly header: ArchiveHeader;
  readonly #key: Buffer;
  readonly #plaintext = new ByteQueue();
  #index = 0;

  constructor(key: ArchiveKey, segmentBytes?: number) {
    this.header = createHeader(key, segmentBytes);
    this.#key = archiveKeyOf(key, this.header);
  }

  /** Takes plaintext; returns the sealed bytes of every segment it completed. */
  update(plaintext: Buffer): Buffer[] {
    this.#plaintext.push(plaintext);
    const sealed: Buffer[] = [];
    // Strictly more than a segment: a segment is sealed as "not last" only when a byte follows it.
    while (this.#plaintext.length > this.header.segmentBytes) {
      sealed.push(...this.#seal(this.#plaintext.take(this.header.segmentBytes), false));
    }
    return sealed;
  }

  /** Seals what is left as the last segment. */
  final(): Buffer[] {
    return this.#seal(this.#plaintext.take(this.#plaintext.length), true);
  }

  #seal(pieces: Buffer[], last: boolean): Buffer[] {
    const cipher = createCipheriv("aes-256-gcm", this.#key, segmentNonce(this.#index++, last));
    cipher.setAAD(this.header.bytes);
    const sealed = pieces.map((piece) => cipher.update(piece));
    sealed.push(cipher.final(), cipher.getAuthTag());
    return sealed;
  }
}

/** Opens version 2 segments as the bytes after the header arrive. */
export class SegmentOpener {
  readonly authenticatesAsItGoes = true;
  readonly #header: ArchiveHeader;
  readonly #key: Buffer;
  readonly #sealed = new ByteQueue();
  #index = 0;

  constructor(key: ArchiveKey, header: ArchiveHeader) {
    this.#header = header;
    this.#key = archiveKeyOf(key, header);
  }

  /**
   * Takes sealed bytes; returns the plaintext of every segment they completed, each
   * already authenticated.
   * @throws ArchiveDecryptError when a segment fails its tag.
   */
  update(sealed: Buffer): Buffer[] {
    this.#sealed.push(sealed);
    const segment = this.#header.segmentBytes + TAG_BYTES;
    const plaintext: Buffer[] = [];
    while (this.#sealed.length > segment) plaintext.push(...this.#open(this.#header.segmentBytes, false));
    return plaintext;
  }

  /**
   * Opens what is left as the last segment.
   * @throws ArchiveCorruptError when not even a tag is left; ArchiveDecryptError when
   *   the last segment fails its tag (a changed byte, or an archive cut short).
   */
  final(): Buffer[] {
    if (this.#sealed.length < TAG_BYTES) throw new ArchiveCorruptError("truncated");
    return this.#open(this.#sealed.length - TAG_BYTES, true);
  }

  #open(bytes: number, last: boolean): Buffer[] {
    const decipher = createDecipheriv("aes-256-gcm", this.#key, segmentNonce(this.#index++, last));
    decipher.setAAD(this.#header.bytes);
    const plaintext = this.#sealed.take(bytes).map((piece) => decipher.update(piece));
    decipher.setAuthTag(this.#sealed.takeJoined(TAG_BYTES));
    try {
      plaintext.push(decipher.final());
    } catch (error) {
      throw new ArchiveDecryptError(this.#header.keyId, "authentication failed (wrong key, or the bytes were changed)", {
        cause: error,
      });
    }
    return plaintext;
  }
}
