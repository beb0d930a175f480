import { rm } from "node:fs/promises";

import { log } from "../../log";
import { removeRestoreLeftovers } from "../archive-extractor";
import type { DatabaseSessionStore } from "../database-session-store";
import type { SessionEventLog } from "../session-event-log";
import { errorCode } from "../session-store-errors";
import type { RecordWriteQueue } from "./record-write-queue";

/**
 * Deletes a logged-out user's stored session, in order with the channel's other writes,
 * trying three times; false when it could not (logged).
 */
export async function deleteLoggedOutSession(
  store: DatabaseSessionStore,
  userId: string,
  writes: RecordWriteQueue,
  events?: SessionEventLog,
): Promise<boolean> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await writes.run(() => store.deleteSession(userId));
      events?.forgetSession(userId); // the record is gone: later events keep only the user
      log("info", "Session logged out and deleted", { userId });
      return true;
    } catch (error) {
      log("error", "Failed to delete the logged-out session", { userId, attempt, code: errorCode(error) });
    }
  }
  return false;
}

/**
 * Deletes a logged-out profile from disk (a later start must not reuse it), and whatever a
 * restore of it that died mid-way left beside it; failures are logged. A browser that
 * died (killed, crashed) leaves helper processes writing into the profile for a moment:
 * a folder that fills again while it is emptied (ENOTEMPTY) is tried again.
 */
export async function deleteLoggedOutProfile(sessionDir: string, userId: string): Promise<void> {
  const profile = rm(sessionDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  await Promise.all([profile, removeRestoreLeftovers(sessionDir)]).catch((error: unknown) => {
    log("error", "Failed to delete the logged-out profile", { userId, error: String(error) });
  });
}
