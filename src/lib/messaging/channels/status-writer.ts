import { log } from "../../log";
import type { DatabaseSessionStore, SessionStatus } from "../database-session-store";
import type { LeaseKeeper } from "../lease-keeper";
import { LeaseLostError } from "../session-lease";
import { errorCode } from "../session-store-errors";
import type { RecordWriteQueue } from "./record-write-queue";

/** What a channel knows when its status changes, besides the status. */
export interface StatusFacts {
  phoneNumber: string | null;
  /** The user stopped it: the session is no longer to run. */
  stoppedByUser: boolean;
  /** The start was a resume (the session starting by itself). */
  resumed: boolean;
}

/**
 * Records a channel's status on its session record, one write at a time (the channel's
 * queue), fenced by its lease: none once the lease is lost or released, so never over a
 * newer owner's status. A write refused for a lost lease tells the keeper; other
 * failures are logged (the status is not worth failing the channel for).
 */
export function writeStatus(
  channel: { userId: string; lease: LeaseKeeper; writes: RecordWriteQueue; store: DatabaseSessionStore },
  status: SessionStatus,
  facts: StatusFacts,
): Promise<void> {
  const lease = channel.lease.lease;
  if (!lease) return channel.writes.idle();
  // A session that reached ready is to run until the user stops it (see SessionResumer).
  const keepRunning = status === "ready" ? true : facts.stoppedByUser ? false : undefined;
  // A user's own start that reached ready ends a run of failed resumes; a resumed one
  // must first stay up a while (the resumer clears it then).
  const clearResumeFailures = status === "ready" && !facts.resumed;
  const details = { phoneNumber: facts.phoneNumber, keepRunning, clearResumeFailures };
  return channel.writes.run(() => channel.store.recordStatus(lease, status, details)).catch((error: unknown) => {
    if (error instanceof LeaseLostError) return channel.lease.lost();
    log("warn", "Failed to record the session status", { userId: channel.userId, status, code: errorCode(error) });
  });
}
