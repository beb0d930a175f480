import { daysAgo } from "../days-ago";
import { log } from "../log";
import { sweepArchiveFiles } from "./session-housekeeping";
import { errorCode } from "./session-store-errors";
import type { WhatsAppRuntime } from "./whatsapp-runtime";

/** A client still not ready after this long (a QR nobody scanned, a stuck start) is stale. */
export const STALE_CONNECTION_MS = 15 * 60 * 1000;

export interface CleanupResult {
  deletedSessions: number;
  closedConnections: number;
  deletedEvents: number;
  /** Idempotency-Keys recorded over a day ago. */
  deletedSendKeys: number;
  /** Archive files in storage that no session named (see sweepArchiveFiles); null when the sweep failed (logged). */
  deletedFiles: number | null;
}

/**
 * The daily cleanup: stops this instance's stale clients, deletes stored sessions
 * inactive for `retention.sessionDays` (never one whose lease is live: it runs
 * somewhere), session events older than `retention.eventDays`, Idempotency-Keys older
 * than a day, and archive files no session names.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function runSessionCleanup(
  runtime: WhatsAppRuntime,
  retention: { sessionDays: number; eventDays: number },
): Promise<CleanupResult> {
  const closed = await runtime.manager.cleanupStaleConnections(STALE_CONNECTION_MS);
  for (const userId of closed) runtime.events.record(userId, "stale_closed", { data: { afterMinutes: STALE_CONNECTION_MS / 60_000 } });
  const deletedSessions = await runtime.store.cleanupOldSessions(retention.sessionDays);
  const deletedEvents = await runtime.events.pruneOlderThan(daysAgo(retention.eventDays));
  const deletedSendKeys = await runtime.sends.pruneRecorded();
  // The deletes above are done: a failed sweep (S3 unreachable, say) is reported, not thrown.
  const deletedFiles = await sweepArchiveFiles(runtime.pb).catch((error: unknown) => {
    log("warn", "Could not sweep unnamed archive files", { code: errorCode(error), error: String(error) });
    return null;
  });
  return { deletedSessions, closedConnections: closed.length, deletedEvents, deletedSendKeys, deletedFiles };
}
