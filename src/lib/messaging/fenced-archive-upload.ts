import { openAsBlob } from "node:fs";
import type PocketBase from "pocketbase";
import type { RecordModel } from "pocketbase";

import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { LONG_REQUEST_TIMEOUT_MS } from "../pocketbase/request-timeout";
import { LeaseLostError, type Lease } from "./session-lease";
import { toStoreError } from "./session-store-errors";

export interface FencedArchive {
  /** The archive's file: uploaded from disk, never read into memory. */
  file: string;
  sizeBytes: number;
  metadata: Record<string, unknown>;
  phoneNumber?: string;
  /** Leave last_active as it is (a re-encryption is no activity of the user's). */
  keepLastActive?: boolean;
}

/**
 * Stores an archive as `lease.userId`'s session through the hook route that checks the
 * lease and saves in one transaction (pocketbase/pb_hooks/leases.pb.js): PocketBase
 * keeps it only while that lease generation is still the session's.
 * @throws LeaseLostError (a newer owner holds the session, or its record is gone),
 *   PocketBaseUnavailableError, SessionStoreError — and the previous archive stays.
 */
export async function uploadArchiveFenced(pb: PocketBase, lease: Lease, archive: FencedArchive): Promise<RecordModel> {
  const form = new FormData();
  form.set("archive", new File([await openAsBlob(archive.file)], `session-${lease.userId}.wvlt`));
  form.set("user", lease.userId);
  form.set("owner", lease.owner);
  form.set("generation", String(lease.generation));
  form.set("size_bytes", String(archive.sizeBytes));
  form.set("metadata", JSON.stringify(archive.metadata));
  if (archive.phoneNumber) form.set("phone_number", archive.phoneNumber);
  if (archive.keepLastActive) form.set("keep_last_active", "true");
  try {
    return await pb.send<RecordModel>("/api/wavault/sessions/archive", { method: "POST", body: form, signal: AbortSignal.timeout(LONG_REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw fencedError(error, lease, "save the session archive");
  }
}

/** A 409 from a fenced hook route is a lost lease; anything else a store error. */
export function fencedError(error: unknown, lease: Lease | undefined, action: string): Error {
  if (lease && isPocketBaseError(error, 409)) return new LeaseLostError(lease.userId, lease.generation);
  return toStoreError(error, action);
}
