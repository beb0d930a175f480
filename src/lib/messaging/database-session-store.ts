import { existsSync, openAsBlob } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type PocketBase from "pocketbase";
import type { RecordModel } from "pocketbase";

import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { downloadArchive } from "./archive-download";
import { ArchiveMemoryCache } from "./archive-memory-cache";
import { readArchive, type SessionArchive, type SessionArchiver } from "./session-archiver";
import { collectStorageStats, deleteStaleSessions, type StorageStats } from "./session-housekeeping";
import { fencedError, uploadArchiveFenced } from "./fenced-archive-upload";
import type { Lease } from "./session-lease";
import { ArchiveStoreLimit } from "./archive-store-limit";
import { ArchiveOverStoreLimitError, isNotFound, toStoreError } from "./session-store-errors";

export const SESSIONS_COLLECTION = "whatsapp_sessions";
/** Written into a restored or archived profile: the stored version it holds. */
export const VERSION_MARKER = ".wavault-version";

export type RestoreTier = "memory" | "file" | "database";

/** A status write gives up after this long (it is small; PocketBase answers in milliseconds). */
const STATUS_TIMEOUT_MS = 15_000;

/** The session status machine (seed 003): created → initializing → qr_ready → authenticating → ready → disconnected | failed. */
export type SessionStatus = "created" | "initializing" | "qr_ready" | "authenticating" | "ready" | "disconnected" | "failed";

export interface LoadedSession {
  /** Where the archive came from: the memory cache, the profile already on disk, or PocketBase. */
  tier: RestoreTier;
  sha256: string;
  sizeBytes: number;
  phoneNumber: string | null;
  ms: number;
}

export interface DatabaseSessionStoreOptions {
  /** Recorded as metadata.saved_by. */
  instanceId: string;
  /** The memory tier's budget in bytes (0 turns it off) and its entry cap. */
  memoryCacheBytes: number;
  memoryCacheEntries?: number;
}

interface SessionMetadata {
  sha256: string;
  raw_bytes: number;
  archived_bytes: number;
  file_count: number;
  compression_ratio: number;
  format_version: number;
  key_id: string;
  saved_by: string;
  saved_at: string;
  [extra: string]: unknown;
}

/** What a status write records besides the status. */
export interface StatusDetails {
  /** The session's phone number, once known. */
  phoneNumber?: string | null;
  /** Whether the user wants the session running (see SessionResumer); unchanged when not given. */
  keepRunning?: boolean;
  /** Forget the session's failed resumes (a user's own connect reached ready; see SessionResumer). */
  clearResumeFailures?: boolean;
}

/**
 * Keeps each user's session archive in the `whatsapp_sessions` collection (a protected
 * file field) and restores it through three tiers: the profile already on disk when its
 * marker names the stored version, then the memory cache, then a download.
 *
 * A save is one multipart update of the record: PocketBase stores the new file, commits
 * the record, and only then deletes the old file; an upload that fails or is cut off
 * never reaches the commit, so the previous archive stays the restorable one.
 */
export class DatabaseSessionStore {
  readonly #pb: PocketBase;
  readonly #archiver: SessionArchiver;
  readonly #instanceId: string;
  readonly #memory: ArchiveMemoryCache;
  /** What PocketBase stores at most: a bigger archive is refused here, before any upload (a refused upload can look like a dropped connection). */
  readonly #storeLimit: ArchiveStoreLimit;
  /** How often an archive was fetched from PocketBase or sent to it (for tests and stats). */
  readonly counters = { downloads: 0, uploads: 0 };

  constructor(pb: PocketBase, archiver: SessionArchiver, options: DatabaseSessionStoreOptions) {
    this.#pb = pb;
    this.#archiver = archiver;
    this.#instanceId = options.instanceId;
    this.#storeLimit = new ArchiveStoreLimit(pb, SESSIONS_COLLECTION);
    this.#memory = new ArchiveMemoryCache({
      maxBytes: options.memoryCacheBytes,
      maxEntries: options.memoryCacheEntries ?? 256,
    });
  }

  /**
   * Stores `archive` as the user's session, replacing the previous one only once the
   * upload is complete. With a `lease`, PocketBase saves it only while that lease
   * generation is still the session's (a fenced upload).
   * @throws ArchiveOverStoreLimitError (nothing uploaded), LeaseLostError (fenced: a newer
   *   owner holds the session), PocketBaseUnavailableError, SessionStoreError — and the
   *   previous archive stays.
   */
  async saveSession(
    userId: string,
    archive: SessionArchive,
    phoneNumber?: string,
    metadata: Record<string, unknown> = {},
    lease?: Lease,
  ): Promise<RecordModel> {
    const maxBytes = await this.#storeLimit.bytes();
    if (maxBytes !== null && archive.sizeBytes > maxBytes) throw new ArchiveOverStoreLimitError(archive.sizeBytes, maxBytes);
    const stored = {
      ...metadata,
      sha256: archive.sha256,
      raw_bytes: archive.rawBytes,
      archived_bytes: archive.archivedBytes,
      file_count: archive.fileCount,
      compression_ratio: archive.compressionRatio,
      format_version: archive.formatVersion,
      key_id: archive.keyId,
      saved_by: this.#instanceId,
      saved_at: new Date().toISOString(),
    } satisfies SessionMetadata;

    let saved: RecordModel;
    if (lease) {
      saved = await uploadArchiveFenced(this.#pb, lease, { file: archive.file, sizeBytes: archive.sizeBytes, metadata: stored, phoneNumber });
    } else {
      const fields: Record<string, unknown> = {
        // A file-backed blob: the upload streams from disk.
        archive: new File([await openAsBlob(archive.file)], `session-${userId}.wvlt`),
        compressed: true,
        size_bytes: archive.sizeBytes,
        last_active: new Date().toISOString(),
        metadata: stored,
        ...(phoneNumber ? { phone_number: phoneNumber } : {}),
      };
      saved = await this.#saveUnfenced(userId, fields).catch((error: unknown) => {
        throw toStoreError(error, "save the session archive");
      });
    }
    this.counters.uploads += 1;
    if (this.#memory.accepts(archive.sizeBytes)) this.#memory.set(userId, archive.sha256, await readArchive(archive));
    return saved;
  }

  /** A plain update or create, for callers without a lease (the migration script, tools). */
  async #saveUnfenced(userId: string, fields: Record<string, unknown>): Promise<RecordModel> {
    const collection = this.#pb.collection(SESSIONS_COLLECTION);
    const existing = await this.#findRecord(userId);
    if (existing) return collection.update(existing.id, fields);
    return collection.create({ ...fields, user: userId, status: "created" }).catch(async (error) => {
      // A concurrent first save won the unique index on user: update its record instead.
      const lostRace = isPocketBaseError(error, 400) && error.response?.data?.user;
      const winner = lostRace ? await this.#findRecord(userId) : null;
      if (!winner) throw error;
      return collection.update(winner.id, fields);
    });
  }

  /**
   * Restores the user's stored session into `targetDir` and returns what it restored,
   * or null when the user has none. Does not download when `targetDir` already holds
   * the stored version.
   * @throws ArchiveCorruptError and the other archiver errors (the target stays as it
   *   was), PocketBaseUnavailableError, SessionStoreError.
   */
  async loadSession(userId: string, targetDir: string): Promise<LoadedSession | null> {
    const started = performance.now();
    const record = await this.#findRecordOrNull(userId, "look up the session");
    const sha256 = (record?.metadata as Partial<SessionMetadata> | null)?.sha256;
    if (!record || !record.archive || !sha256) return null;
    const result = (tier: RestoreTier): LoadedSession => ({
      tier,
      sha256,
      sizeBytes: record.size_bytes as number,
      phoneNumber: (record.phone_number as string) || null,
      ms: performance.now() - started,
    });

    if ((await readVersionMarker(targetDir)) === sha256) return result("file");

    const cached = this.#memory.get(userId, sha256);
    if (cached) {
      await this.#archiver.restoreSession(cached, targetDir, { expectedSha256: sha256 });
    } else {
      // Streams the download into the restore; keeps a copy only if the memory tier takes it.
      const keep = this.#memory.accepts(record.size_bytes as number) ? ([] as Buffer[]) : null;
      const download = this.#download(record, keep);
      await this.#archiver.restoreSession(download, targetDir, { expectedSha256: sha256 });
      if (keep) this.#memory.set(userId, sha256, Buffer.concat(keep));
    }
    await this.markLocalVersion(targetDir, sha256);
    return result(cached ? "memory" : "database");
  }

  /**
   * Records the session's status (and the `details` given) without touching its archive, fenced
   * by `lease`: PocketBase saves it (the hook route) only while that
   * lease generation is still the session's, so a stale owner never writes over the
   * status of the instance that took the session over.
   * @throws LeaseLostError (a newer owner holds the session, or its record is gone),
   *   PocketBaseUnavailableError, SessionStoreError
   */
  async recordStatus(lease: Lease, status: SessionStatus, details: StatusDetails = {}): Promise<void> {
    const { phoneNumber, keepRunning, clearResumeFailures } = details;
    const body = {
      user: lease.userId,
      owner: lease.owner,
      generation: lease.generation,
      status,
      ...(phoneNumber ? { phone_number: phoneNumber } : {}),
      ...(keepRunning === undefined ? {} : { keep_running: keepRunning }),
      ...(clearResumeFailures ? { clear_resume_failures: true } : {}),
    };
    try {
      // Bounded: the channel's writes queue behind it (a dead network path would hang it).
      await this.#pb.send("/api/wavault/sessions/status", { method: "POST", body, signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    } catch (error) {
      throw fencedError(error, lease, "record the session status");
    }
  }

  /** Records that `dir` holds the stored version `sha256` (after a restore or an archive of it). */
  async markLocalVersion(dir: string, sha256: string): Promise<void> {
    await writeFile(path.join(dir, VERSION_MARKER), `${sha256}\n`);
  }

  /** Deletes the user's stored session; false when there was none. */
  async deleteSession(userId: string): Promise<boolean> {
    this.#memory.delete(userId);
    const record = await this.#findRecordOrNull(userId, "look up the session");
    if (!record) return false;
    try {
      await this.#pb.collection(SESSIONS_COLLECTION).delete(record.id);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw toStoreError(error, "delete the session");
    }
  }

  /** Whether the user has a stored archive. */
  async hasSession(userId: string): Promise<boolean> {
    const record = await this.#findRecordOrNull(userId, "look up the session");
    return Boolean(record?.archive);
  }

  /**
   * Deletes every session inactive for `days` days, except one whose lease is live;
   * returns how many (see deleteStaleSessions).
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async cleanupOldSessions(days = 30): Promise<number> {
    const users = await deleteStaleSessions(this.#pb, days, (deleted) => {
      for (const userId of deleted) this.#memory.delete(userId);
    });
    return users.length;
  }

  /** Totals over every stored session. */
  getStorageStats(): Promise<StorageStats> {
    return collectStorageStats(this.#pb);
  }

  async #findRecord(userId: string): Promise<RecordModel | null> {
    try {
      return await this.#pb
        .collection(SESSIONS_COLLECTION)
        .getFirstListItem(this.#pb.filter("user = {:user}", { user: userId }));
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async #findRecordOrNull(userId: string, action: string): Promise<RecordModel | null> {
    try {
      return await this.#findRecord(userId);
    } catch (error) {
      throw toStoreError(error, action);
    }
  }

  /** The record's archive as it downloads (counted once it arrives), a copy pushed to `keep`. */
  async *#download(record: RecordModel, keep: Buffer[] | null): AsyncGenerator<Buffer> {
    let counted = false;
    for await (const bytes of downloadArchive(this.#pb, record)) {
      if (!counted) this.counters.downloads += 1;
      counted = true;
      keep?.push(bytes);
      yield bytes;
    }
  }
}

async function readVersionMarker(dir: string): Promise<string | null> {
  const marker = path.join(dir, VERSION_MARKER);
  if (!existsSync(marker)) return null;
  return (await readFile(marker, "utf8")).trim() || null;
}
