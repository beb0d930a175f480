import { randomBytes } from "node:crypto";

import { ArchiveCorruptError } from "./archive-errors";
import type { ArchiveKey } from "./archive-keys";

/**
 * The archive header. Two versions are read; new archives are version 2.
 *
 *   version 1: "WVLT" · 1 · key id length (1 byte) · key id (ASCII) · IV (12 bytes)
 *              · AES-256-GCM(gzip(tar)) · tag (16 bytes)
 *   version 2: "WVLT" · 2 · key id length (1 byte) · key id (ASCII) · salt (16 bytes)
 *              · segment size (uint32 BE) · sealed segments (archive-segments.ts)
 *
 * Version 1 authenticates its body only at its very end, so nothing of it can be used
 * before the last byte has arrived. Version 2 seals the same gzip(tar) in segments that
 * are each authenticated on their own, so a restore unpacks while it downloads and
 * still never parses an unauthenticated byte. The whole header is the additional data
 * of every GCM operation: a changed key id, version or segment size fails like a
 * changed ciphertext byte.
 */
export const ARCHIVE_FORMAT_VERSION = 2;
const MAGIC = Buffer.from("WVLT", "ascii");
const IV_BYTES = 12;
const SALT_BYTES = 16;
/** Plaintext bytes per sealed segment in new archives. */
export const SEGMENT_BYTES = 256 * 1024;
/** A reader holds one segment before it can authenticate it: this bounds that. */
const MAX_SEGMENT_BYTES = 4 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 1024;

export interface ArchiveHeader {
  version: number;
  keyId: string;
  /** Version 1: the GCM IV. Version 2: the salt the archive's own key is derived with. */
  nonce: Buffer;
  /** Version 2: plaintext bytes per segment (the last may hold fewer). */
  segmentBytes: number;
  /** The header's own bytes (the GCM additional data). */
  bytes: Buffer;
}

/** A version 2 header for a new archive under `key`, with a fresh random salt. */
export function createHeader(key: ArchiveKey, segmentBytes = SEGMENT_BYTES): ArchiveHeader {
  const keyId = Buffer.from(key.id, "ascii");
  const nonce = randomBytes(SALT_BYTES);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(segmentBytes);
  const bytes = Buffer.concat([MAGIC, Buffer.from([ARCHIVE_FORMAT_VERSION, keyId.length]), keyId, nonce, size]);
  return { version: ARCHIVE_FORMAT_VERSION, keyId: key.id, nonce, segmentBytes, bytes };
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
  if (version !== 1 && version !== 2) throw new ArchiveCorruptError(`unsupported format version ${version}`);
  const keyIdStart = MAGIC.length + 2;
  const nonceStart = keyIdStart + archive[MAGIC.length + 1]!;
  const nonceEnd = nonceStart + (version === 1 ? IV_BYTES : SALT_BYTES);
  const headerLength = version === 1 ? nonceEnd : nonceEnd + 4;
  if (!need(headerLength)) return null;
  const segmentBytes = version === 1 ? 0 : archive.readUInt32BE(nonceEnd);
  if (version === 2 && (segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES)) {
    throw new ArchiveCorruptError(`unsupported segment size ${segmentBytes}`);
  }
  return {
    version,
    keyId: archive.subarray(keyIdStart, nonceStart).toString("ascii"),
    nonce: Buffer.from(archive.subarray(nonceStart, nonceEnd)),
    segmentBytes,
    bytes: Buffer.from(archive.subarray(0, headerLength)),
  };
}
