import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

import { ArchiveFileWriter } from "./archive-file-writer";
import { decryptArchiveStream } from "./archive-format";
import type { ArchiveKeyRing } from "./archive-keys";

export interface ReencryptedArchive {
  /** The new archive's file (0600); the caller deletes it. */
  file: string;
  sizeBytes: number;
  /** Hex SHA-256 of the new archive. */
  sha256: string;
  keyId: string;
  /** The key the archive was encrypted with before. */
  fromKeyId: string;
}

/**
 * Re-encrypts an archive under the key ring's current key without unpacking it: the
 * body (gzip of the tar) is deciphered with the key its header names and enciphered
 * again under a fresh IV. The new file counts only once the old archive's checksum and
 * GCM tag have passed and the new file deciphers to the same bytes.
 * @throws ArchiveCorruptError, ArchiveDecryptError (an unknown key, changed bytes) — and
 *   then nothing is left at `file`.
 */
export async function reencryptArchive(
  source: AsyncIterable<Uint8Array>,
  keys: ArchiveKeyRing,
  file: string,
  expectedSha256?: string,
): Promise<ReencryptedArchive> {
  const out = await ArchiveFileWriter.create(file, keys.current);
  const body = createHash("sha256");
  try {
    const old = await decryptArchiveStream(
      source,
      keys,
      (plaintext) => {
        body.update(plaintext);
        return out.writeBody(plaintext);
      },
      expectedSha256,
    );
    const { sizeBytes, sha256 } = await out.finish();

    const check = createHash("sha256");
    await decryptArchiveStream(createReadStream(file), keys, (plaintext) => void check.update(plaintext));
    if (check.digest("hex") !== body.digest("hex")) throw new Error("the re-encrypted archive does not decipher to the original body");
    return { file, sizeBytes, sha256, keyId: keys.current.id, fromKeyId: old.keyId };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
