import { randomUUID } from "node:crypto";
import { lstat, mkdtemp, readdir, realpath, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";

import { parsePocketBaseDate } from "../pocketbase/pocketbase-date";
import { errorCode, isNotFound, toStoreError } from "./session-store-errors";
import { SESSIONS_COLLECTION, type DatabaseSessionStore } from "./database-session-store";
import { fingerprintOf, scanProfile, type ProfileScan } from "./profile-scan";
import { disposeArchive, hasValidSession, type SessionArchiver } from "./session-archiver";
import { holdLease, type HeldLease } from "./held-lease";
import { isMarkedMigrated, markedSourceId, MIGRATED_MARKER, writeMigrationMarker } from "./migration-marker";
import { browserHoldingProfile } from "./profile-lock";
import { SessionLeasedElsewhereError, SessionNotWantedError, type Lease, type SessionLease } from "./session-lease";

const RUNNING = "an instance runs this session now (its lease is live); run again later";
/**
 * A verified folder is renamed to this prefix before it is deleted, so that a deletion cut
 * short (a kill, a crash) never leaves a half-deleted `session-<userId>` for the next run
 * to take for a changed session; the next run finishes deleting it.
 */
const DELETING_PREFIX = ".wavault-deleting-";

/**
 * What happened to one folder (or, in a dry run, what would):
 * - migrate: would be archived and uploaded (dry run);
 * - migrated: archived, uploaded, downloaded again and verified;
 * - unchanged: migrated by an earlier run and not changed since;
 * - stored_by_app: the app has saved a session for this user since: never overwritten;
 * - deleted_since: migrated by an earlier run, and the stored session was deleted since
 *   (a logout, the cleanup): never uploaded again;
 * - unknown_user, invalid_session, running (an instance holds its lease, or a browser on
 *   this machine has the folder open), refused (a symlink, outside the directory, or a
 *   copy of a folder migrated from another place), failed: problems; the folder is never
 *   deleted;
 * - stopped: not reached, the run was stopped (a signal) first.
 */
export type MigrationAction =
  | "migrate"
  | "migrated"
  | "unchanged"
  | "stored_by_app"
  | "deleted_since"
  | "unknown_user"
  | "invalid_session"
  | "running"
  | "refused"
  | "stopped"
  | "failed";

/** The message of a migrated row whose folder `deleteSource` left, as it changed after it was archived. */
export const CHANGED_NOT_DELETED = "verified, but the folder changed since it was archived: not deleted";

/** Actions that mean a folder did not (or would not) make it into the database. */
export const PROBLEM_ACTIONS: ReadonlySet<MigrationAction> = new Set(["unknown_user", "invalid_session", "running", "refused", "stopped", "failed"]);

export interface MigrationRow {
  /** The folder's name inside the directory (`session-<userId>`). */
  folder: string;
  userId: string | null;
  /** The folder's files, caches included. */
  rawBytes: number | null;
  files: number | null;
  /** The archive's size: measured by archiving, in a dry run too. */
  archiveBytes: number | null;
  action: MigrationAction;
  /** Whether the folder was deleted (only with `deleteSource`, only once verified). */
  deleted: boolean;
  /** Why, for anything but a plain migrate. */
  message: string;
}

export interface MigrationOptions {
  /** false: a dry run that changes nothing. */
  execute: boolean;
  /** Delete each source folder once its upload is verified (needs `execute`). */
  deleteSource: boolean;
  /** Mark each verified session to keep running, so that instances start it by themselves (needs `execute`). */
  keepRunning?: boolean;
  concurrency: number;
  /** Called as each folder is done. */
  onRow?: (row: MigrationRow) => void;
  /** Once aborted, no further folder is started; those under way finish. */
  signal?: AbortSignal;
}

// LocalAuth's folder for clientId = a PocketBase record id (15 characters by default;
// custom ids are letters, digits, "_" and "-").
const FOLDER = /^session-([A-Za-z0-9_-]{1,64})$/;

/**
 * Moves whatsapp-web.js LocalAuth session folders (`<dir>/session-<userId>`) into the
 * session store: each is archived, uploaded, downloaded again and restored into a
 * scratch directory to verify it, and only then, if asked, deleted. A failure on one
 * folder is recorded in its row and the others go on.
 */
export class SessionMigrator {
  readonly #pb: PocketBase;
  readonly #store: DatabaseSessionStore;
  readonly #archiver: SessionArchiver;
  readonly #leases: SessionLease;
  readonly #dir: string;

  /** `store` should have no memory tier, so that a verification really downloads. */
  constructor(options: { pb: PocketBase; store: DatabaseSessionStore; archiver: SessionArchiver; leases: SessionLease; dir: string }) {
    this.#pb = options.pb;
    this.#store = options.store;
    this.#archiver = options.archiver;
    this.#leases = options.leases;
    this.#dir = options.dir;
  }

  /**
   * Handles every session folder in the directory, `concurrency` at a time; returns a
   * row per folder, sorted by folder name (once `signal` aborts, those not reached are
   * "stopped").
   * @throws when the directory itself cannot be read
   */
  async migrate(options: MigrationOptions): Promise<MigrationRow[]> {
    if (options.deleteSource && !options.execute) throw new Error("deleteSource needs execute");
    const root = await realpath(this.#dir);
    if (options.execute) await this.#finishDeletions(root);
    const names = await this.#folderNames(root);
    const scratch = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-verify-"));
    const rows: MigrationRow[] = [];
    let next = 0;
    const worker = async () => {
      while (next < names.length && !options.signal?.aborted) {
        const name = names[next++]!;
        const row = await this.#migrateFolder(root, name, scratch, options);
        rows.push(row);
        options.onRow?.(row);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, names.length)) }, worker));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    for (const name of names.slice(next)) {
      const row: MigrationRow = { folder: name, userId: FOLDER.exec(name)?.[1] ?? null, rawBytes: null, files: null, archiveBytes: null, action: "stopped", deleted: false, message: "not reached: the run was stopped first; run again to go on" };
      rows.push(row);
    }
    return rows.sort((a, b) => a.folder.localeCompare(b.folder));
  }

  /** How many folders `migrate` will handle. */
  async countFolders(): Promise<number> {
    return (await this.#folderNames(await realpath(this.#dir))).length;
  }

  async #folderNames(root: string): Promise<string[]> {
    const entries = await readdir(root, { withFileTypes: true });
    return entries
      .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && !entry.name.startsWith(DELETING_PREFIX))
      .map((entry) => entry.name)
      .sort();
  }

  /** Deletes what an earlier run had verified and begun to delete (see DELETING_PREFIX); what will not go is left for the next run. */
  async #finishDeletions(root: string): Promise<void> {
    for (const entry of await readdir(root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !entry.name.startsWith(DELETING_PREFIX)) continue;
      await rm(path.join(root, entry.name), { recursive: true, force: true }).catch(() => {}); // never a session: no row
    }
  }

  async #migrateFolder(root: string, name: string, scratch: string, options: MigrationOptions): Promise<MigrationRow> {
    const userId = FOLDER.exec(name)?.[1] ?? null;
    const row: MigrationRow = { folder: name, userId, rawBytes: null, files: null, archiveBytes: null, action: "failed", deleted: false, message: "" };
    const done = (action: MigrationAction, message = "") => Object.assign(row, { action, message });
    const deletedSince = () =>
      done("deleted_since", "migrated by an earlier run, and the stored session was deleted since (a logout or the cleanup): not uploaded again");
    const folder = path.join(root, name);
    try {
      // Only real folders inside the directory: a link could point at any data on the machine.
      if ((await lstat(folder)).isSymbolicLink()) return done("refused", "a symlink: only real folders inside the directory are migrated");
      if (!(await realpath(folder)).startsWith(root + path.sep)) return done("refused", "lies outside the directory");
      if (!userId) return done("invalid_session", "not a LocalAuth session folder (session-<userId>)");

      const scan = await scanProfile(folder);
      Object.assign(row, { rawBytes: scan.rawBytes, files: scan.rawFiles });
      if (!(await this.#userExists(userId))) return done("unknown_user", `no PocketBase user has the id "${userId}"`);
      if (!hasValidSession(folder)) {
        return done("invalid_session", "no WhatsApp Web login data (IndexedDB of web.whatsapp.com and Local Storage)");
      }
      // A live browser changes the folder while it is read, and would go on using the
      // same WhatsApp device as the instance that resumes the migrated copy.
      const browser = browserHoldingProfile(folder);
      if (browser !== null) {
        return done("running", `a browser on this machine has the folder open (pid ${browser}, its SingletonLock): stop it, then run again`);
      }
      // Nothing to claim a lease for: the session was migrated, then deleted (a logout).
      if (isMarkedMigrated(folder) && !(await this.#storedSession(userId))?.hasArchive) return deletedSince();

      // An execute holds the user's lease from this check to the verified upload: no
      // instance can start the session (and save a newer archive) in between, and the
      // upload is fenced by it.
      let held: HeldLease | null = null;
      if (options.execute) {
        try {
          // A migrated folder needs a stored archive: a claim then never creates a record.
          held = await holdLease(this.#leases, userId, { onlyIfArchived: isMarkedMigrated(folder) });
        } catch (error) {
          if (error instanceof SessionLeasedElsewhereError) return done("running", RUNNING);
          if (error instanceof SessionNotWantedError) return deletedSince();
          throw error;
        }
      }
      const lease = held?.lease ?? null;
      try {
        const stored = await this.#storedSession(userId);
        if (!lease && stored?.leaseLive) return done("running", RUNNING);
        if (!stored?.hasArchive && isMarkedMigrated(folder)) return deletedSince();
        if (stored?.hasArchive && stored.sourceFingerprint === fingerprintOf(scan)) {
          row.archiveBytes = stored.sizeBytes;
          done("unchanged", "already migrated, and the folder has not changed since");
          if (options.deleteSource) await this.#verifyAndDelete(folder, userId, stored.sha256, scan, scratch, row);
          else if (options.execute) await this.#markMigrated(folder, userId, stored.sha256, stored.sourceId, row); // runs before markers existed
          if (options.keepRunning && lease) await this.#markKeepRunning(lease, row);
          return row;
        }
        if (stored?.hasArchive && stored.sourceId && stored.sourceId !== markedSourceId(folder)) {
          return done("refused", `migrated earlier from another copy of this folder (its ${MIGRATED_MARKER} marker is missing or names another): the stored session is left as it is`);
        }
        if (stored?.hasArchive && !stored.sourceFingerprint) {
          return done("stored_by_app", "the app has stored a session for this user since: left as it is");
        }
        return await this.#archiveAndUpload(folder, userId, scan, lease, scratch, options, row);
      } finally {
        await held?.release();
      }
    } catch (error) {
      return done("failed", `${errorCode(error)}: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  async #archiveAndUpload(
    folder: string,
    userId: string,
    scan: ProfileScan,
    lease: Lease | null,
    scratch: string,
    options: MigrationOptions,
    row: MigrationRow,
  ): Promise<MigrationRow> {
    const archive = await this.#archiver.archiveSession(folder, scan);
    const sourceId = markedSourceId(folder) ?? randomUUID();
    try {
      row.archiveBytes = archive.sizeBytes;
      if (!options.execute) return Object.assign(row, { action: "migrate" as const, message: "" });
      await this.#store.saveSession(
        userId,
        archive,
        undefined,
        { reason: "migration", source_fingerprint: archive.fingerprint, source_folder: path.basename(folder), source_id: sourceId },
        lease ?? undefined,
      );
    } finally {
      await disposeArchive(archive);
    }
    Object.assign(row, { action: "migrated" as const, message: "uploaded and verified" });
    if (options.deleteSource) await this.#verifyAndDelete(folder, userId, archive.sha256, scan, scratch, row);
    else await this.#verify(userId, archive.sha256, scratch);
    if (!row.deleted) await this.#markMigrated(folder, userId, archive.sha256, sourceId, row);
    if (options.keepRunning && lease) await this.#markKeepRunning(lease, row);
    return row;
  }

  /** Marks a verified session to keep running (see SessionResumer); if it cannot, the row becomes a failure. */
  async #markKeepRunning(lease: Lease, row: MigrationRow): Promise<void> {
    if (row.action === "failed") return;
    try {
      await this.#store.recordStatus(lease, "disconnected", { keepRunning: true });
    } catch (error) {
      row.action = "failed";
      row.message = `uploaded and verified, but not marked to keep running (${errorCode(error)}): run again with --keep-running`;
    }
  }

  /** Leaves MIGRATED_MARKER in a verified folder; if it cannot, the row becomes a failure. */
  async #markMigrated(folder: string, userId: string, sha256: string, sourceId: string | null, row: MigrationRow): Promise<void> {
    try {
      await writeMigrationMarker(folder, { userId, sha256, sourceId });
    } catch (error) {
      // A problem: should the stored session be deleted later, a re-run would bring it back.
      row.action = "failed";
      row.message = `uploaded and verified, but the folder could not be marked as migrated (${(error as NodeJS.ErrnoException).code ?? String(error)}): make it writable and run again, or delete it`;
    }
  }

  /**
   * Downloads the stored archive and restores it into a scratch directory: its sha256,
   * its GCM tag and every entry are checked, as a real restore checks them.
   * @throws when the stored archive is not the one expected or does not restore
   */
  async #verify(userId: string, sha256: string, scratch: string): Promise<void> {
    const target = path.join(scratch, userId);
    try {
      const loaded = await this.#store.loadSession(userId, target);
      if (!loaded || loaded.tier !== "database" || loaded.sha256 !== sha256) {
        throw new Error("the stored archive is not the one uploaded (changed meanwhile?)");
      }
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }

  /** Verifies the upload, then deletes the folder, unless it changed since it was scanned. */
  async #verifyAndDelete(folder: string, userId: string, sha256: string, scan: ProfileScan, scratch: string, row: MigrationRow) {
    await this.#verify(userId, sha256, scratch);
    if (fingerprintOf(await scanProfile(folder)) !== fingerprintOf(scan)) {
      row.message = CHANGED_NOT_DELETED;
      return;
    }
    const deleting = path.join(path.dirname(folder), `${DELETING_PREFIX}${path.basename(folder)}`);
    await rename(folder, deleting);
    await rm(deleting, { recursive: true, force: true });
    row.deleted = true;
    row.message = "verified and deleted";
  }

  async #userExists(userId: string): Promise<boolean> {
    try {
      await this.#pb.collection("users").getOne(userId, { fields: "id" });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw toStoreError(error, "look up the user");
    }
  }

  async #storedSession(userId: string) {
    try {
      const record = await this.#pb
        .collection(SESSIONS_COLLECTION)
        .getFirstListItem(this.#pb.filter("user = {:user}", { user: userId }), {
          fields: "archive,size_bytes,metadata,lease_owner,lease_expires",
        });
      const metadata = (record.metadata ?? {}) as Record<string, unknown>;
      const expires = parsePocketBaseDate(record.lease_expires) ?? 0;
      return {
        hasArchive: Boolean(record.archive),
        sizeBytes: Number(record.size_bytes) || 0,
        sha256: String(metadata.sha256 ?? ""),
        sourceFingerprint: typeof metadata.source_fingerprint === "string" ? metadata.source_fingerprint : null,
        /** The source id of the folder a migration took it from (see MIGRATED_MARKER); unset for archives of earlier versions of this script. */
        sourceId: typeof metadata.source_id === "string" ? metadata.source_id : null,
        leaseLive: Boolean(record.lease_owner) && expires > Date.now(),
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toStoreError(error, "read the stored session");
    }
  }
}
