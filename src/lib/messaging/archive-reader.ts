import { createHash } from "node:crypto";

import { ArchiveCorruptError, ArchiveDecryptError } from "./archive-errors";
import { readHeader, type ArchiveHeader } from "./archive-format";
import type { ArchiveKeyRing } from "./archive-keys";
import { SegmentOpener } from "./archive-segments";
import { V1BodyOpener } from "./archive-v1-opener";

/** Where an archive's plaintext goes, piece by piece, in order. */
export type PlaintextSink = (plaintext: Buffer) => Promise<void> | void;

export interface ArchiveBody {
  header: ArchiveHeader;
  /**
   * True (version 2): each piece handed to the sink is already authenticated. False
   * (version 1): nothing is until decryptArchiveStream returns.
   */
  authenticatesAsItGoes: boolean;
}

/**
 * Decrypts an archive as it streams in. Once the header is read, `sinkFor` says where
 * the plaintext goes, knowing whether it will arrive authenticated; every piece is
 * handed on in order. Before the last piece, the SHA-256 of every byte read is checked
 * against `expectedSha256` (when given) — that is what names the stored version.
 * @throws ArchiveCorruptError for input that is no archive, is truncated, or does not
 *   match the checksum; ArchiveDecryptError for an unknown key id, a wrong key or
 *   changed bytes. Pieces already handed on must then be thrown away.
 */
export async function decryptArchiveStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: ArchiveKeyRing,
  sinkFor: (body: ArchiveBody) => Promise<PlaintextSink> | PlaintextSink,
  expectedSha256?: string,
): Promise<{ sha256: string; sizeBytes: number; version: number }> {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  let start = Buffer.alloc(0);
  let body: { header: ArchiveHeader; opener: SegmentOpener | V1BodyOpener; sink: PlaintextSink } | undefined;

  for await (const chunk of source) {
    hash.update(chunk);
    sizeBytes += chunk.length;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!body) {
      start = Buffer.concat([start, data]);
      const header = readHeader(start, false);
      if (!header) continue;
      const key = keys.byId.get(header.keyId);
      if (!key) throw new ArchiveDecryptError(header.keyId, "no configured key has this id (SESSION_ENCRYPTION_OLD_KEYS?)");
      const opener = header.version === 1 ? new V1BodyOpener(key, header) : new SegmentOpener(key, header);
      const sink = await sinkFor({ header, authenticatesAsItGoes: opener.authenticatesAsItGoes });
      body = { header, opener, sink };
      data = start.subarray(header.bytes.length);
    }
    for (const plaintext of body.opener.update(data)) await body.sink(plaintext);
  }

  if (!body) {
    readHeader(start); // throws the precise "not an archive" / "truncated"
    throw new ArchiveCorruptError("truncated");
  }
  const sha256 = hash.digest("hex");
  if (expectedSha256 && expectedSha256 !== sha256) {
    throw new ArchiveCorruptError("its SHA-256 does not match the recorded one");
  }
  for (const plaintext of body.opener.final()) await body.sink(plaintext);
  return { sha256, sizeBytes, version: body.header.version };
}
