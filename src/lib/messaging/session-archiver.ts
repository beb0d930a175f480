import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { makeDirectory } from "../system/make-directory";
import { ArchiveTooLargeError, asLocalDiskError, ProfileChangedError, ProfileEmptyError } from "./archive-errors";
import { extractArchiveAtomically, removeRestoreLeftovers, siblingPaths, type ExtractLimits } from "./archive-extractor";
import { ArchiveFileWriter } from "./archive-file-writer";
import { ARCHIVE_FORMAT_VERSION, decryptArchiveStream } from "./archive-format";
import type { ArchiveKeyRing } from "./archive-keys";
import { PrivateFileWriter } from "./private-file-writer";
import { packProfile } from "./profile-packer";
import { findChangedFile, fingerprintOf, scanProfile, type ProfileScan } from "./profile-scan";

export interface SessionArchive {
  /**
   * The archive on disk — header · AES-256-GCM(gzip(tar)) · tag — in the archiver's
   * work directory, private to this process. Upload it, then `disposeArchive()` it.
   */
  file: string;
  /** The archive's length. */
  sizeBytes: number;
  /** The whole profile on disk, caches included. */
  rawBytes: number;
  /** The kept files' bytes, before compression. */
  archivedBytes: number;
  fileCount: number;
  /** sizeBytes / rawBytes: 0.04 means the archive is 4% of the profile. */
  compressionRatio: number;
  /** Hex SHA-256 of the archive. */
  sha256: string;
  formatVersion: number;
  keyId: string;
  /** What the profile's kept files looked like (paths, sizes, mtimes): see fingerprintOf. */
  fingerprint: string;
}

export interface RestoredSession {
  sha256: string;
  sizeBytes: number;
  entries: number;
  bytes: number;
}

/** An archive to restore: all of it in memory, or a stream of it (a download, a file). */
export type ArchiveSource = Buffer | AsyncIterable<Uint8Array>;

export interface SessionArchiverOptions extends ExtractLimits {
  keys: ArchiveKeyRing;
  /** 1 (fast) … 9 (small) for compressible files; 6 is zlib's balance. */
  gzipLevel: number;
  /** Where archives are written (default: the OS temp dir). */
  workDir?: string;
}

/** The whole archive in memory (for the memory cache and tests). */
export function readArchive(archive: SessionArchive): Promise<Buffer> {
  return readFile(archive.file);
}

/** Deletes the archive's file. */
export async function disposeArchive(archive: SessionArchive): Promise<void> {
  await rm(archive.file, { force: true });
}

/**
 * Turns a whatsapp-web.js LocalAuth profile into a small encrypted archive and back,
 * streaming both ways: memory use stays at a few files' worth, whatever the profile.
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
   * Prunes, tars, gzips and encrypts `sessionDir` into a new file in the work dir.
   * @throws ProfileEmptyError when nothing worth keeping is there; ProfileChangedError
   *   when a kept file changed while it was read; ArchiveTooLargeError when a restore
   *   would refuse it (more entries or bytes than the restore limits): saved, it would
   *   replace the last archive that can be restored; LocalDiskError (a full disk, say).
   */
  async archiveSession(sessionDir: string, scanned?: ProfileScan): Promise<SessionArchive> {
    if (!existsSync(sessionDir)) throw new ProfileEmptyError(sessionDir);
    const scan = scanned ?? (await scanProfile(sessionDir));
    if (scan.keptFiles === 0) throw new ProfileEmptyError(sessionDir);
    // One tar entry per kept file and folder, their bytes as a restore counts them.
    if (scan.kept.length > this.#options.maxEntries) throw new ArchiveTooLargeError("entries", this.#options.maxEntries);
    if (scan.keptBytes > this.#options.maxBytes) throw new ArchiveTooLargeError("bytes", this.#options.maxBytes);

    const key = this.#options.keys.current;
    const workDir = this.#options.workDir ?? os.tmpdir();
    await makeDirectory(workDir);
    const out = await ArchiveFileWriter.create(path.join(workDir, `wavault-archive-${randomUUID()}.wvlt`), key);
    let written: { sizeBytes: number; sha256: string };
    try {
      await packProfile(sessionDir, scan.kept, this.#options.gzipLevel, (member) => out.writeBody(member));
      written = await out.finish();
      const changed = await findChangedFile(sessionDir, scan);
      if (changed) throw new ProfileChangedError(changed);
    } catch (error) {
      await out.discard();
      throw asLocalDiskError(error, "archive the session");
    }

    return {
      file: out.path,
      sizeBytes: written.sizeBytes,
      rawBytes: scan.rawBytes,
      archivedBytes: scan.keptBytes,
      fileCount: scan.keptFiles,
      compressionRatio: scan.rawBytes > 0 ? written.sizeBytes / scan.rawBytes : 0,
      sha256: written.sha256,
      formatVersion: ARCHIVE_FORMAT_VERSION,
      keyId: key.id,
      fingerprint: fingerprintOf(scan),
    };
  }

  /**
   * Verifies and restores an archive into `targetDir`, all or nothing. The archive is
   * decrypted as it arrives into a private scratch file beside the target; only once
   * its checksum and GCM tag have passed is that unpacked — every tar entry checked —
   * into a staging directory, which is then swapped in.
   * @throws ArchiveCorruptError, ArchiveDecryptError, UnsafeArchiveError, ArchiveTooLargeError,
   *   LocalDiskError (a full disk, say) — and then the target is exactly as it was.
   */
  async restoreSession(
    archive: ArchiveSource,
    targetDir: string,
    options: { expectedSha256?: string } = {},
  ): Promise<RestoredSession> {
    const { plaintext } = siblingPaths(targetDir);
    let out: PrivateFileWriter | undefined;
    try {
      await makeDirectory(path.dirname(plaintext));
      await removeRestoreLeftovers(targetDir); // of a restore whose process died
      out = await PrivateFileWriter.create(plaintext);
      const source = Buffer.isBuffer(archive) ? [archive] : archive;
      const verified = await decryptArchiveStream(source, this.#options.keys, (bytes) => out!.write(bytes), options.expectedSha256);
      await out.close();
      const { entries, bytes } = await extractArchiveAtomically(plaintext, targetDir, this.#options);
      return { ...verified, entries, bytes };
    } catch (error) {
      throw asLocalDiskError(error, "restore the session");
    } finally {
      await out?.discard();
    }
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
