import type PocketBase from "pocketbase";

import { SESSIONS_COLLECTION, type SessionStatus } from "./database-session-store";
import { parsePocketBaseDate } from "../pocketbase/pocketbase-date";
import { isNotFound, toStoreError } from "./session-store-errors";

/** What the stored archive of a session is (from its record's metadata). */
export interface StoredArchiveSummary {
  sizeBytes: number;
  rawBytes: number | null;
  compressionRatio: number | null;
  savedAt: string | null;
  encrypted: boolean;
}

/** A user's `whatsapp_sessions` record, as the API shows it. */
export interface SessionSummary {
  status: SessionStatus;
  phoneNumber: string | null;
  lastActive: string | null;
  archive: StoredArchiveSummary | null;
  /** The instance holding the session's lease while it is live (and where it answers, when it said), else null. */
  lease: { owner: string; ownerUrl: string | null; expiresAt: string } | null;
  /** The session is to run until the user stops it: an instance starts it when none runs it. */
  keepRunning: boolean;
}

function isoOrNull(value: unknown): string | null {
  const time = parsePocketBaseDate(value);
  return time === null ? null : new Date(time).toISOString();
}

/**
 * Reads a user's session record (with the superuser client: the caller has already
 * established whose session it is). Null when the user has none.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function readSessionSummary(pb: PocketBase, userId: string): Promise<SessionSummary | null> {
  let record;
  try {
    record = await pb.collection(SESSIONS_COLLECTION).getFirstListItem(pb.filter("user = {:user}", { user: userId }), {
      fields: "status,phone_number,last_active,archive,size_bytes,metadata,lease_owner,lease_owner_url,lease_expires,keep_running",
    });
  } catch (error) {
    if (isNotFound(error)) return null;
    throw toStoreError(error, "read the session");
  }
  const metadata = (record.metadata ?? {}) as Record<string, unknown>;
  const leaseExpires = isoOrNull(record.lease_expires);
  const leaseLive = Boolean(record.lease_owner) && leaseExpires !== null && Date.parse(leaseExpires) > Date.now();
  return {
    status: (record.status as SessionStatus) || "created",
    phoneNumber: (record.phone_number as string) || null,
    lastActive: isoOrNull(record.last_active),
    archive: record.archive
      ? {
          sizeBytes: Number(record.size_bytes) || 0,
          rawBytes: typeof metadata.raw_bytes === "number" ? metadata.raw_bytes : null,
          compressionRatio: typeof metadata.compression_ratio === "number" ? metadata.compression_ratio : null,
          savedAt: isoOrNull(metadata.saved_at),
          encrypted: typeof metadata.key_id === "string" && metadata.key_id !== "",
        }
      : null,
    lease: leaseLive ? { owner: String(record.lease_owner), ownerUrl: (record.lease_owner_url as string) || null, expiresAt: leaseExpires! } : null,
    keepRunning: record.keep_running === true,
  };
}
