import { createHash } from "node:crypto";

/** One AES-256 key and the id written into the header of every archive it encrypts. */
export interface ArchiveKey {
  id: string;
  key: Buffer;
}

/** The current key (encrypts) and every key that may still decrypt. */
export interface ArchiveKeyRing {
  current: ArchiveKey;
  byId: ReadonlyMap<string, ArchiveKey>;
}

/** A short, stable id for a key: it names the key without revealing it. */
export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update("wavault-archive-key:").update(key).digest("hex").slice(0, 16);
}

/**
 * A key ring from base64 keys (SESSION_ENCRYPTION_KEY and SESSION_ENCRYPTION_OLD_KEYS);
 * new archives use the current key, old ones still decrypt.
 */
export function createKeyRing(currentBase64: string, oldBase64: readonly string[] = []): ArchiveKeyRing {
  const toKey = (base64: string): ArchiveKey => {
    const key = Buffer.from(base64, "base64");
    if (key.length !== 32) throw new Error("an archive key must be 32 bytes");
    return { id: keyIdOf(key), key };
  };
  const current = toKey(currentBase64);
  const byId = new Map<string, ArchiveKey>([[current.id, current]]);
  for (const old of oldBase64) {
    const key = toKey(old);
    if (!byId.has(key.id)) byId.set(key.id, key);
  }
  return { current, byId };
}
