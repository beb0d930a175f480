import type PocketBase from "pocketbase";

import { daysAgo } from "../days-ago";
import { LONG_REQUEST_TIMEOUT_MS } from "../pocketbase/request-timeout";
import { toStoreError } from "./session-store-errors";

/** Stale sessions deleted per cleanup transaction. */
const CLEANUP_BATCH = 200;
/** Unnamed archive files deleted per sweep (they are rare: see sweepArchiveFiles). */
const SWEEP_LIMIT = 1_000;

export interface StorageStats {
  totalSessions: number;
  totalSizeBytes: number;
  averageSizeBytes: number;
  largestSizeBytes: number;
  oldestLastActive: string | null;
}

/**
 * Deletes every session inactive for `days` days, except one whose lease is live (a
 * client runs it somewhere, however quiet); returns their users, and hands each
 * batch's to `onBatch` as soon as it is deleted. PocketBase finds and deletes each
 * batch in one transaction (the hook route in pb_hooks/leases.pb.js), so a user who
 * comes back and claims the lease meanwhile keeps the session.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function deleteStaleSessions(
  pb: PocketBase,
  days: number,
  onBatch: (users: string[]) => void = () => {},
): Promise<string[]> {
  const before = daysAgo(days).toISOString();
  const users: string[] = [];
  for (;;) {
    let batch: { deleted: number; users: string[] };
    try {
      // Each deleted record's archive goes from storage in the same request (S3: a call each).
      const signal = AbortSignal.timeout(LONG_REQUEST_TIMEOUT_MS);
      batch = await pb.send("/api/wavault/sessions/cleanup", { method: "POST", body: { before, limit: CLEANUP_BATCH }, signal });
    } catch (error) {
      throw toStoreError(error, "delete stale sessions");
    }
    if (batch.deleted === 0) return users;
    users.push(...batch.users);
    onBatch(batch.users);
  }
}

/**
 * Deletes archive files in storage that no session record names (up to 1,000 a call):
 * unnamed for over an hour beside their record's archive, or for over 30 days in the
 * folder of a record that is gone or names none; returns how many. They are left by a
 * PocketBase that died between storing a save's file and naming it in the record, or by
 * a failed delete of a replaced or deleted session's file; each would otherwise stay in
 * storage (local or S3) for good. PocketBase lists and deletes them by its own clock
 * (the hook route in pb_hooks/archive-files.pb.js).
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function sweepArchiveFiles(pb: PocketBase): Promise<number> {
  try {
    // It lists the whole storage folder (S3 pages at 10,000 sessions): more than a request's usual 30 s.
    const signal = AbortSignal.timeout(LONG_REQUEST_TIMEOUT_MS);
    const result = await pb.send<{ deleted: number }>("/api/wavault/sessions/sweep-files", { method: "POST", body: { limit: SWEEP_LIMIT }, signal });
    return result.deleted;
  } catch (error) {
    throw toStoreError(error, "sweep unnamed archive files");
  }
}

/**
 * Totals over every stored session (records with an archive), in one SQL aggregate
 * PocketBase runs (the hook route in pb_hooks/storage-stats.pb.js): one request however
 * many sessions there are.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function collectStorageStats(pb: PocketBase): Promise<StorageStats> {
  let totals: Omit<StorageStats, "averageSizeBytes">;
  try {
    totals = await pb.send("/api/wavault/sessions/stats", { method: "GET" });
  } catch (error) {
    throw toStoreError(error, "read storage stats");
  }
  const { totalSessions, totalSizeBytes } = totals;
  return { ...totals, averageSizeBytes: totalSessions ? Math.round(totalSizeBytes / totalSessions) : 0 };
}
