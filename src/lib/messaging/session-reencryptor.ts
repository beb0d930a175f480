import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import type { RecordModel } from "pocketbase";

import { makeDirectory } from "../system/make-directory";
import { downloadArchive } from "./archive-download";
import type { ArchiveKeyRing } from "./archive-keys";
import { reencryptArchive } from "./archive-reencryption";
import { SESSIONS_COLLECTION } from "./database-session-store";
import { uploadArchiveFenced } from "./fenced-archive-upload";
import { holdLease, type HeldLease } from "./held-lease";
import { SessionLeasedElsewhereError, SessionNotWantedError, type SessionLease } from "./session-lease";
import { errorCode, isNotFound, toStoreError } from "./session-store-errors";

/**
 * What happened to one stored archive (or, in a dry run, what would):
 * - current: already under SESSION_ENCRYPTION_KEY;
 * - reencrypt: would be re-encrypted (dry run);
 * - reencrypted: re-encrypted under the current key, checked to decipher to the same
 *   bytes, then uploaded (fenced);
 * - gone: deleted (or emptied) since the list was read;
 * - running: an instance runs the session (its lease is live): it saves under the
 *   current key on its next save once it runs with this configuration; run again later;
 * - unknown_key: made with a key this configuration does not have: left as it is;
 * - stopped: not reached, the run was stopped (a signal) first;
 * - failed: left as it was, see the message.
 */
export type ReencryptionAction = "current" | "reencrypt" | "reencrypted" | "gone" | "running" | "unknown_key" | "stopped" | "failed";

/** Actions that leave an archive under an old (or unknown) key. */
export const REENCRYPTION_PROBLEMS: ReadonlySet<ReencryptionAction> = new Set(["running", "unknown_key", "stopped", "failed"]);

export interface ReencryptionRow {
  userId: string;
  /** The key id the archive had when it was looked at. */
  keyId: string;
  sizeBytes: number;
  action: ReencryptionAction;
  message: string;
}

export interface ReencryptionOptions {
  /** false: a dry run that changes nothing. */
  execute: boolean;
  concurrency: number;
  onRow?: (row: ReencryptionRow) => void;
  /** Once aborted, no further archive is started; those under way finish. */
  signal?: AbortSignal;
}

interface StoredArchive {
  record: RecordModel;
  keyId: string;
  sha256: string;
  metadata: Record<string, unknown>;
}

/**
 * Moves every stored archive to the current encryption key (SESSION_ENCRYPTION_KEY), so
 * that a key moved to SESSION_ENCRYPTION_OLD_KEYS can be dropped: sessions nobody
 * connects never save again by themselves. Each archive is re-encrypted without being
 * unpacked (the same profile, a new key and IV) while the script holds the session's
 * lease, uploaded through the fenced route (last_active unchanged) and only then
 * replaces the old one.
 */
export class SessionReencryptor {
  readonly #pb: PocketBase;
  readonly #keys: ArchiveKeyRing;
  readonly #leases: SessionLease;
  readonly #workDir: string;

  constructor(options: { pb: PocketBase; keys: ArchiveKeyRing; leases: SessionLease; workDir?: string }) {
    this.#pb = options.pb;
    this.#keys = options.keys;
    this.#leases = options.leases;
    this.#workDir = options.workDir ?? os.tmpdir();
  }

  /** Handles every stored archive, `concurrency` at a time; a row each, sorted by user id (once `signal` aborts, those not reached are "stopped"). */
  async reencrypt(options: ReencryptionOptions): Promise<ReencryptionRow[]> {
    await makeDirectory(this.#workDir);
    const records = await this.#list();
    const rows: ReencryptionRow[] = [];
    let next = 0;
    const worker = async () => {
      while (next < records.length && !options.signal?.aborted) {
        const row = await this.#handle(records[next++]!, options.execute);
        rows.push(row);
        options.onRow?.(row);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, records.length)) }, worker));
    for (const record of records.slice(next)) {
      const row = this.#classify(record, "stopped");
      if (row.action === "stopped") row.message = "not reached: the run was stopped first; run again to go on";
      rows.push(row);
    }
    return rows.sort((a, b) => a.userId.localeCompare(b.userId));
  }

  /** What the listed record alone tells: a row done without any work, or one whose action (`pending`) is still to be found. */
  #classify(listed: RecordModel, pending: ReencryptionAction): ReencryptionRow {
    const first = storedArchiveOf(listed);
    const row: ReencryptionRow = { userId: listed.user as string, keyId: first?.keyId ?? "", sizeBytes: Number(listed.size_bytes) || 0, action: pending, message: "" };
    const done = (action: ReencryptionAction, message = "") => Object.assign(row, { action, message });
    if (!first) return done("unknown_key", "its metadata records no key id and checksum");
    if (first.keyId === this.#keys.current.id) return done("current");
    if (!this.#keys.byId.has(first.keyId)) return done("unknown_key", `key ${first.keyId} is neither SESSION_ENCRYPTION_KEY nor in SESSION_ENCRYPTION_OLD_KEYS`);
    return row;
  }

  async #handle(listed: RecordModel, execute: boolean): Promise<ReencryptionRow> {
    const row = this.#classify(listed, "failed");
    if (row.action !== "failed") return row;
    const done = (action: ReencryptionAction, message = "") => Object.assign(row, { action, message });
    if (!execute) return done("reencrypt");

    let held: HeldLease;
    try {
      // No activity of the user's; a session deleted since the list was read stays deleted.
      held = await holdLease(this.#leases, row.userId, { keepLastActive: true, onlyIfArchived: true });
    } catch (error) {
      if (error instanceof SessionLeasedElsewhereError) return done("running", "an instance runs this session now (its lease is live); run again later");
      if (error instanceof SessionNotWantedError) return done("gone", "deleted since the list was read");
      return done("failed", describe(error));
    }
    try {
      // Read again under the lease: an instance may have saved a newer archive meanwhile.
      const stored = storedArchiveOf(await this.#record(row.userId));
      if (!stored) return done("gone", "deleted since the list was read");
      if (stored.keyId === this.#keys.current.id) {
        row.keyId = stored.keyId; // the summary counts it under the key it has now
        return done("current", "saved under the current key since the list was read");
      }
      const file = path.join(this.#workDir, `wavault-reencrypt-${randomUUID()}.wvlt`);
      try {
        const archive = await reencryptArchive(downloadArchive(this.#pb, stored.record), this.#keys, file, stored.sha256);
        const metadata = { ...stored.metadata, sha256: archive.sha256, key_id: archive.keyId, reencrypted_from: archive.fromKeyId, reencrypted_at: new Date().toISOString() };
        await uploadArchiveFenced(this.#pb, held.lease, { file, sizeBytes: archive.sizeBytes, metadata, keepLastActive: true });
        row.sizeBytes = archive.sizeBytes;
        return done("reencrypted");
      } finally {
        await rm(file, { force: true });
      }
    } catch (error) {
      return done("failed", describe(error));
    } finally {
      await held.release();
    }
  }

  /** Every record with an archive (superuser: metadata is hidden from users). */
  async #list(): Promise<RecordModel[]> {
    try {
      return await this.#pb.collection(SESSIONS_COLLECTION).getFullList({
        filter: 'archive != ""',
        fields: "id,collectionId,user,archive,size_bytes,metadata",
        batch: 200,
        requestKey: null,
      });
    } catch (error) {
      throw toStoreError(error, "list the stored sessions");
    }
  }

  async #record(userId: string): Promise<RecordModel | null> {
    try {
      return await this.#pb
        .collection(SESSIONS_COLLECTION)
        .getFirstListItem(this.#pb.filter("user = {:user}", { user: userId }), { requestKey: null });
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toStoreError(error, "read the stored session");
    }
  }
}

/** The record's archive with its key id and checksum, or null when it has none. */
function storedArchiveOf(record: RecordModel | null): StoredArchive | null {
  const metadata = (record?.metadata ?? {}) as Record<string, unknown>;
  if (!record?.archive || typeof metadata.key_id !== "string" || typeof metadata.sha256 !== "string") return null;
  return { record, keyId: metadata.key_id, sha256: metadata.sha256, metadata };
}

function describe(error: unknown): string {
  return `${errorCode(error)}: ${(error as Error)?.message ?? String(error)}`;
}
