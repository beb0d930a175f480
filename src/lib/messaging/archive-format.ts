import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

import { ArchiveCorruptError, ArchiveDecryptError } from "./archive-errors";
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
 * Reads the header of `archive`.
 * @throws ArchiveCorruptError when it is no wavault archive, of an unknown version, or truncated.
 */
export function readHeader(archive: Buffer): ArchiveHeader {
  if (archive.length < MAGIC.length + 2 || !archive.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ArchiveCorruptError("not a wavault session archive");
  }
  const version = archive[MAGIC.length]!;
  if (version !== ARCHIVE_FORMAT_VERSION) throw new ArchiveCorruptError(`unsupported format version ${version}`);
  const keyIdLength = archive[MAGIC.length + 1]!;
  const headerLength = MAGIC.length + 2 + keyIdLength + IV_BYTES;
  if (archive.length < headerLength + TAG_BYTES) throw new ArchiveCorruptError("truncated");
  const keyId = archive.subarray(MAGIC.length + 2, MAGIC.length + 2 + keyIdLength).toString("ascii");
  return {
    version,
    keyId,
    iv: archive.subarray(headerLength - IV_BYTES, headerLength),
    bytes: archive.subarray(0, headerLength),
  };
}

/**
 * Decrypts `archive` and verifies its GCM tag before returning anything.
 * @throws ArchiveCorruptError for a malformed header; ArchiveDecryptError for an unknown
 *   key id, a wrong key or tampered bytes.
 */
export function decryptArchive(archive: Buffer, keys: ArchiveKeyRing): Buffer {
  const header = readHeader(archive);
  const key = keys.byId.get(header.keyId);
  if (!key) throw new ArchiveDecryptError(header.keyId, "no configured key has this id (SESSION_ENCRYPTION_OLD_KEYS?)");
  const decipher = createDecipheriv("aes-256-gcm", key.key, header.iv);
  decipher.setAAD(header.bytes);
  decipher.setAuthTag(archive.subarray(archive.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(archive.subarray(header.bytes.length, archive.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (error) {
    throw new ArchiveDecryptError(header.keyId, "authentication failed (wrong key, or the bytes were changed)", {
      cause: error,
    });
  }
}
