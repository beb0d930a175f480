import type PocketBase from "pocketbase";

import { LONG_REQUEST_TIMEOUT_MS } from "../pocketbase/request-timeout";
import { toStoreError } from "./session-store-errors";

/**
 * Asks one of the cleanup's prune routes (`pocketbase/pb_hooks/wavault-prune.js`) to
 * delete its collection's records created before `before`; returns how many.
 * @throws PocketBaseUnavailableError, SessionStoreError (failing to `action`)
 */
export async function pruneCreatedBefore(pb: PocketBase, route: string, before: Date, action: string): Promise<number> {
  try {
    const { deleted } = await pb.send<{ deleted: number }>(route, {
      method: "POST",
      body: { before: before.toISOString() },
      signal: AbortSignal.timeout(LONG_REQUEST_TIMEOUT_MS), // one DELETE, of a backlog after a long cron outage perhaps
    });
    return deleted;
  } catch (error) {
    throw toStoreError(error, action);
  }
}
