import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

import { ArchiveCorruptError, ProfileChangedError } from "./archive-errors";
import { extractArchiveAtomically, type ExtractLimits } from "./archive-extractor";
import { ARCHIVE_FORMAT_VERSION, createArchiveCipher, createHeader, decryptArchive } from "./archive-format";
import type { ArchiveKeyRing } from "./archive-keys";
import { packProfile } from "./profile-packer";
import { findChangedFile, scanProfile } from "./profile-scan";

export interface SessionArchive {
  /** header · AES-256-GCM(gzip(tar)) · tag: what is stored. */
  archive: Buffer;
  /** archive.length */
  sizeBytes: number;
  /** The whole profile on disk, caches included. */
  rawBytes: number;
  /** The kept files' bytes, before compression. */
  archivedBytes: number;
  fileCount: number;
  /** sizeBytes / rawBytes: 0.04 means the archive is 4% of the profile. */
  compressionRatio: number;
  /** Hex SHA-256 of `archive`. */
  sha256: string;
  formatVersion: number;
  keyId: string;
}

export interface RestoredSession {
  sha256: string;
  sizeBytes: number;
  entries: number;
  bytes: number;
}

export interface SessionArchiverOptions extends ExtractLimits {
  keys: ArchiveKeyRing;
  /** 1 (fast) … 9 (small); 6 is zlib's balance. */
  gzipLevel: number;
}

/** There is nothing to archive: no profile, or none of the files that keep a login. */
export class ProfileEmptyError extends Error {
  readonly code = "profile_empty";
  constructor(readonly sessionDir: string) {
    super(`No WhatsApp Web login data in ${sessionDir}; refusing to archive an empty profile.`);
    this.name = "ProfileEmptyError";
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Turns a whatsapp-web.js LocalAuth profile into a small encrypted archive and back.
 *
 * Consistency: archiveSession reads a profile whose files do not change while it reads
 * them. A stopped browser guarantees that; with a running one, every kept file is
 * checked after packing and any change discards the archive (ProfileChangedError), so
 * the caller retries and a torn IndexedDB never reaches the database.
 */
export class SessionArchiver {
  readonly #options: SessionArchiverOptions;

  constructor(options: SessionArchiverOptions) {
    this.#options = options;
  }

  /**
   * Prunes, tars, gzips and encrypts `sessionDir`. Files are read one per core at a
   * time; only the compressed archive is held whole in memory.
   * @throws ProfileEmptyError when nothing worth keeping is there; ProfileChangedError
   *   when a kept file changed while it was read.
   */
  async archiveSession(sessionDir: string): Promise<SessionArchive> {
    if (!existsSync(sessionDir)) throw new ProfileEmptyError(sessionDir);
    const scan = await scanProfile(sessionDir);
    if (scan.keptFiles === 0) throw new ProfileEmptyError(sessionDir);

    const key = this.#options.keys.current;
    const header = createHeader(key);
    const cipher = createArchiveCipher(key, header);
    const chunks: Buffer[] = [header.bytes];
    try {
      await packProfile(sessionDir, scan.kept, this.#options.gzipLevel, (member) => chunks.push(cipher.update(member)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new ProfileChangedError((error as NodeJS.ErrnoException).path ?? sessionDir);
      }
      throw error;
    }
    chunks.push(cipher.final(), cipher.getAuthTag());

    const changed = await findChangedFile(sessionDir, scan);
    if (changed) throw new ProfileChangedError(changed);

    const archive = Buffer.concat(chunks);
    return {
      archive,
      sizeBytes: archive.length,
      rawBytes: scan.rawBytes,
      archivedBytes: scan.keptBytes,
      fileCount: scan.keptFiles,
      compressionRatio: scan.rawBytes > 0 ? archive.length / scan.rawBytes : 0,
      sha256: sha256Hex(archive),
      formatVersion: ARCHIVE_FORMAT_VERSION,
      keyId: key.id,
    };
  }

  /**
   * Verifies and restores an archive into `targetDir`, all or nothing: checksum, header,
   * decryption with the GCM tag checked, every tar entry inspected, then unpacked beside
   * the target and swapped in.
   * @throws ArchiveCorruptError, ArchiveDecryptError, UnsafeArchiveError, ArchiveTooLargeError
   *   — and then the target is exactly as it was.
   */
  async restoreSession(
    archive: Buffer,
    targetDir: string,
    options: { expectedSha256?: string } = {},
  ): Promise<RestoredSession> {
    const sha256 = sha256Hex(archive);
    if (options.expectedSha256 && options.expectedSha256 !== sha256) {
      throw new ArchiveCorruptError("its SHA-256 does not match the recorded one");
    }
    const gzip = decryptArchive(archive, this.#options.keys);
    const { entries, bytes } = await extractArchiveAtomically(gzip, targetDir, this.#options);
    return { sha256, sizeBytes: archive.length, entries, bytes };
  }
}

/**
 * Whether `dir` looks like a restorable, logged-in WhatsApp Web profile: a non-empty
 * IndexedDB database of the WhatsApp Web origin and a localStorage database.
 */
export function hasValidSession(dir: string, origin = "https://web.whatsapp.com"): boolean {
  const { protocol, hostname, port } = new URL(origin);
  const database = `${protocol.replace(":", "")}_${hostname}_${port || 0}.indexeddb.leveldb`;
  const indexedDb = path.join(dir, "Default", "IndexedDB", database);
  const localStorage = path.join(dir, "Default", "Local Storage", "leveldb");
  try {
    const hasData = readdirSync(indexedDb).some((name) => /\.(ldb|log)$/.test(name) && statSync(path.join(indexedDb, name)).size > 0);
    return hasData && statSync(localStorage).isDirectory();
  } catch {
    return false;
  }
}
