import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

import { createArchiveCipher, createHeader, decryptArchiveStream } from "./archive-format";
import type { ArchiveKeyRing } from "./archive-keys";
import { PrivateFileWriter } from "./private-file-writer";

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
  const header = createHeader(keys.current);
  const cipher = createArchiveCipher(keys.current, header);
  const out = await PrivateFileWriter.create(file);
  const hash = createHash("sha256");
  const body = createHash("sha256");
  let sizeBytes = 0;
  const write = (bytes: Buffer) => {
    hash.update(bytes);
    sizeBytes += bytes.length;
    return out.write(bytes);
  };
  try {
    await write(header.bytes);
    const old = await decryptArchiveStream(
      source,
      keys,
      (plaintext) => {
        body.update(plaintext);
        return write(cipher.update(plaintext));
      },
      expectedSha256,
    );
    await write(cipher.final());
    await write(cipher.getAuthTag());
    await out.close();

    const check = createHash("sha256");
    await decryptArchiveStream(createReadStream(file), keys, (plaintext) => void check.update(plaintext));
    if (check.digest("hex") !== body.digest("hex")) throw new Error("the re-encrypted archive does not decipher to the original body");
    return { file, sizeBytes, sha256: hash.digest("hex"), keyId: keys.current.id, fromKeyId: old.keyId };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
