import type { WhatsAppRuntime } from "./whatsapp-runtime";

/** A client still not ready after this long (a QR nobody scanned, a stuck start) is stale. */
export const STALE_CONNECTION_MS = 15 * 60 * 1000;

export interface CleanupResult {
  deletedSessions: number;
  closedConnections: number;
}

/**
 * The daily cleanup: deletes stored sessions inactive for `retentionDays` (never one
 * whose lease is live: it runs somewhere) and stops this instance's stale clients.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function runSessionCleanup(runtime: WhatsAppRuntime, retentionDays: number): Promise<CleanupResult> {
  const closed = await runtime.manager.cleanupStaleConnections(STALE_CONNECTION_MS);
  const deletedSessions = await runtime.store.cleanupOldSessions(retentionDays);
  return { deletedSessions, closedConnections: closed.length };
}
