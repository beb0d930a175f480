import { createCipheriv, createDecipheriv, createHash, randomBytes, type DecipherGCM } from "node:crypto";

import { ArchiveCorruptError, ArchiveDecryptError, ArchiveKeyMissingError } from "./archive-errors";
import type { ArchiveKey, ArchiveKeyRing } from "./archive-keys";

/**
 * The archive format, version 1:
 *
 *   "WVLT" · version (1 byte) · key id length (1 byte) · key id (ASCII) · IV (12 bytes)
 *   · AES-256-GCM(gzip(tar(pruned profile))) · GCM tag (16 bytes)
 *
 * The whole header is the GCM additional data, so a changed key id or version fails
 * the tag check like a changed ciphertext byte does.
 */
export const ARCHIVE_FORMAT_VERSION = 1;
const MAGIC = Buffer.from("WVLT", "ascii");
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface ArchiveHeader {
  version: number;
  keyId: string;
  iv: Buffer;
  /** The header's own bytes (the GCM additional data). */
  bytes: Buffer;
}

/** Builds the header for a new archive under `key` with a fresh random IV. */
export function createHeader(key: ArchiveKey): ArchiveHeader {
  const keyId = Buffer.from(key.id, "ascii");
  const iv = randomBytes(IV_BYTES);
  const bytes = Buffer.concat([MAGIC, Buffer.from([ARCHIVE_FORMAT_VERSION, keyId.length]), keyId, iv]);
  return { version: ARCHIVE_FORMAT_VERSION, keyId: key.id, iv, bytes };
}

/** A streaming AES-256-GCM cipher for the body that follows `header`. */
export function createArchiveCipher(key: ArchiveKey, header: ArchiveHeader) {
  const cipher = createCipheriv("aes-256-gcm", key.key, header.iv);
  cipher.setAAD(header.bytes);
  return cipher;
}

/**
 * Reads the header at the start of `archive` (the whole archive, or only its first bytes
 * when `complete` is false: then null means "need more bytes").
 * @throws ArchiveCorruptError when it is no wavault archive, of an unknown version, or truncated.
 */
export function readHeader(archive: Buffer, complete = true): ArchiveHeader | null {
  const need = (bytes: number) => {
    if (archive.length >= bytes) return true;
    if (complete) throw new ArchiveCorruptError(archive.length < MAGIC.length ? "not a wavault session archive" : "truncated");
    return false;
  };
  if (!need(MAGIC.length + 2)) return null;
  if (!archive.subarray(0, MAGIC.length).equals(MAGIC)) throw new ArchiveCorruptError("not a wavault session archive");
  const version = archive[MAGIC.length]!;
  if (version !== ARCHIVE_FORMAT_VERSION) throw new ArchiveCorruptError(`unsupported format version ${version}`);
  const keyIdLength = archive[MAGIC.length + 1]!;
  const headerLength = MAGIC.length + 2 + keyIdLength + IV_BYTES;
  if (!need(headerLength)) return null;
  return {
    version,
    keyId: archive.subarray(MAGIC.length + 2, MAGIC.length + 2 + keyIdLength).toString("ascii"),
    iv: Buffer.from(archive.subarray(headerLength - IV_BYTES, headerLength)),
    bytes: Buffer.from(archive.subarray(0, headerLength)),
  };
}

/**
 * Decrypts an archive as it streams in, handing the plaintext to `write` and holding
 * back the trailing GCM tag. The plaintext is NOT yet authenticated when `write` sees
 * it: the caller must keep it away from anything that matters until `finish` returns.
 * `finish` checks the SHA-256 of every byte seen (when one is expected) and the tag.
 * @throws ArchiveCorruptError for a malformed or truncated archive or a checksum
 *   mismatch; ArchiveDecryptError for an unknown key id, a wrong key or changed bytes.
 */
export async function decryptArchiveStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: ArchiveKeyRing,
  write: (plaintext: Buffer) => Promise<void> | void,
  expectedSha256?: string,
): Promise<{ sha256: string; sizeBytes: number; keyId: string }> {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  let pending = Buffer.alloc(0);
  let header: ArchiveHeader | null = null;
  let decipher: DecipherGCM | undefined;

  for await (const chunk of source) {
    hash.update(chunk);
    sizeBytes += chunk.length;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!header) {
      pending = Buffer.concat([pending, data]);
      header = readHeader(pending, false);
      if (!header) continue;
      const key = keys.byId.get(header.keyId);
      if (!key) throw new ArchiveKeyMissingError(header.keyId);
      decipher = createDecipheriv("aes-256-gcm", key.key, header.iv);
      decipher.setAAD(header.bytes);
      data = pending.subarray(header.bytes.length);
      pending = Buffer.alloc(0);
    }
    // `pending` holds the last TAG_BYTES seen, which may be the tag; decipher the rest.
    if (data.length >= TAG_BYTES) {
      // The tag is in the last bytes of `data` or later, so `pending` is ciphertext:
      // deciphered piece by piece (GCM takes any sizes), `data` is never copied.
      if (pending.length) await write(decipher!.update(pending));
      if (data.length > TAG_BYTES) await write(decipher!.update(data.subarray(0, data.length - TAG_BYTES)));
      pending = Buffer.from(data.subarray(data.length - TAG_BYTES));
    } else {
      const all = Buffer.concat([pending, data]);
      if (all.length > TAG_BYTES) await write(decipher!.update(all.subarray(0, all.length - TAG_BYTES)));
      pending = Buffer.from(all.subarray(Math.max(0, all.length - TAG_BYTES)));
    }
  }

  if (!header) readHeader(pending); // throws the precise "not an archive" / "truncated"
  if (pending.length < TAG_BYTES) throw new ArchiveCorruptError("truncated");
  const sha256 = hash.digest("hex");
  if (expectedSha256 && expectedSha256 !== sha256) {
    throw new ArchiveCorruptError("its SHA-256 does not match the recorded one");
  }
  decipher!.setAuthTag(pending);
  let last: Buffer;
  try {
    last = decipher!.final();
  } catch (error) {
    throw new ArchiveDecryptError(header!.keyId, "authentication failed (wrong key, or the bytes were changed)", {
      cause: error,
    });
  }
  await write(last);
  return { sha256, sizeBytes, keyId: header!.keyId };
}
