import { randomInt } from "node:crypto";
import type PocketBase from "pocketbase";

import { log } from "../log";
import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { parsePocketBaseDate } from "../pocketbase/pocketbase-date";
import { pruneCreatedBefore } from "./prune-created-before";
import { errorCode, isNotFound, PocketBaseUnavailableError, SessionStoreError, toStoreError } from "./session-store-errors";

const COLLECTION = "whatsapp_send_keys";
/** A release is tried this many times in all, the waits between doubling from RELEASE_FIRST_WAIT_MS (31 s of waits). */
const RELEASE_ATTEMPTS = 6;
const RELEASE_FIRST_WAIT_MS = 1_000;
/** Each release attempt's own limit: one that hangs must not hold up the next. */
const RELEASE_TIMEOUT_MS = 5_000;

/**
 * What the record of an Idempotency-Key says: the message it went with (a digest) and,
 * once the send is out, its id. `id` null: the key was claimed and the send's outcome is
 * not recorded (it is under way, or its instance stopped before recording it).
 */
export interface StoredSend {
  fingerprint: string;
  id: string | null;
  /** When the key was claimed (ms since the epoch), by PocketBase's clock; null when unreadable. */
  claimedAt: number | null;
}

/** A claim taken (its record's id, to complete or release), or the record that was there. */
export type KeyClaim = { claimed: true; claimId: string } | { claimed: false; stored: StoredSend };

/**
 * The sends made under an Idempotency-Key, in PocketBase (`whatsapp_send_keys`), so that
 * a key outlives the instance that ran the session: its restart, or the session's move
 * to another instance. A key is claimed before its message is sent (the unique index on
 * user and key lets one claim through, whichever instance asks) and completed with the
 * message id once it is out. A key counts for `ttlMs` after its claim; a record older than
 * that is deleted when the key comes again, and by the daily cleanup (pruneOlderThan).
 */
export class SendKeyStore {
  readonly #pb: PocketBase;
  readonly #ttlMs: number;

  constructor(pb: PocketBase, ttlMs: number) {
    this.#pb = pb;
    this.#ttlMs = ttlMs;
  }

  /**
   * Claims `key` for a send of the message `fingerprint` digests, or answers what its
   * record holds (a send made, or one claimed whose outcome is not recorded).
   * @throws PocketBaseUnavailableError (then a claim PocketBase may have made all the
   *   same is released in the background), SessionStoreError
   */
  async claim(userId: string, key: string, fingerprint: string): Promise<KeyClaim> {
    for (let attempt = 1; ; attempt++) {
      // The id is chosen here, so that a claim whose answer was lost can be found and undone.
      const claimId = newRecordId();
      try {
        await this.#pb.collection(COLLECTION).create({ id: claimId, user: userId, idempotency_key: key, fingerprint });
        return { claimed: true, claimId };
      } catch (error) {
        const failure = toStoreError(error, "claim the Idempotency-Key");
        // No answer, or a failing one: PocketBase may have made the claim all the same, or
        // make it yet (a create goes on after its client has given up on it).
        if (failure instanceof PocketBaseUnavailableError || (failure instanceof SessionStoreError && failure.status >= 500)) {
          this.releaseInBackground(claimId, { mayNotExistYet: true });
        }
        if (!isTaken(error)) throw failure;
        const stored = await this.find(userId, key);
        if (stored) return { claimed: false, stored };
        // Gone by now (expired, so find deleted it; or released): claim it again, once.
        if (attempt === 2) throw failure;
      }
    }
  }

  /**
   * Records that the claimed send went out as message `messageId`.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async complete(claimId: string, messageId: string): Promise<void> {
    try {
      await this.#pb.collection(COLLECTION).update(claimId, { message_id: messageId });
    } catch (error) {
      throw toStoreError(error, "record the Idempotency-Key's message");
    }
  }

  /**
   * Gives up a claim whose send failed, so that a retry under the key sends. False when
   * there was none (already released, say).
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async release(claimId: string): Promise<boolean> {
    try {
      // requestKey null: the SDK's auto-cancellation would otherwise replace the signal.
      await this.#pb.collection(COLLECTION).delete(claimId, { requestKey: null, signal: AbortSignal.timeout(RELEASE_TIMEOUT_MS) });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw toStoreError(error, "release the Idempotency-Key");
    }
  }

  /**
   * Releases a claim, trying again for up to a minute while PocketBase cannot be asked;
   * never throws (a claim still there after that is logged: its key is refused until it
   * expires). `mayNotExistYet`: a claim whose create got no answer, which PocketBase may
   * still be making — not found counts as "not yet" until the last attempt.
   */
  releaseInBackground(claimId: string, { mayNotExistYet = false }: { mayNotExistYet?: boolean } = {}): void {
    void (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const released = await this.release(claimId);
          if (released || !mayNotExistYet || attempt === RELEASE_ATTEMPTS) return;
        } catch (error) {
          if (attempt === RELEASE_ATTEMPTS) {
            return log("warn", "Could not release an Idempotency-Key whose message was not sent; the key is refused until it expires", {
              code: errorCode(error),
            });
          }
        }
        await new Promise((resolve) => setTimeout(resolve, RELEASE_FIRST_WAIT_MS * 2 ** (attempt - 1)).unref());
      }
    })();
  }

  /**
   * What is recorded for `userId` under `key` within the TTL, or null.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async find(userId: string, key: string): Promise<StoredSend | null> {
    const collection = this.#pb.collection(COLLECTION);
    try {
      const record = await collection.getFirstListItem(this.#pb.filter("user = {:userId} && idempotency_key = {:key}", { userId, key }));
      // A record whose date cannot be read counts as live: sending again is the worse mistake.
      const created = parsePocketBaseDate(record.created);
      if (created === null || created >= Date.now() - this.#ttlMs) {
        return { fingerprint: record.fingerprint as string, id: (record.message_id as string) || null, claimedAt: created };
      }
      // Expired: the key may be used afresh (the unique index would refuse its new claim).
      // Deleted meanwhile (404) is null all the same, below.
      await collection.delete(record.id);
      return null;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toStoreError(error, "look up the Idempotency-Key");
    }
  }

  /**
   * Deletes the keys claimed before `before`; returns how many.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  pruneOlderThan(before: Date): Promise<number> {
    return pruneCreatedBefore(this.#pb, "/api/wavault/send-keys/prune", before, "delete old Idempotency-Keys");
  }
}

/** A new record id in PocketBase's default form: 15 characters of a–z and 0–9. */
function newRecordId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: 15 }, () => alphabet[randomInt(alphabet.length)]).join("");
}

/** PocketBase refused a claim because the key's record is there (the unique index on user and key). */
function isTaken(error: unknown): boolean {
  if (!isPocketBaseError(error, 400)) return false;
  const fields = error.response?.data as Record<string, { code?: string }> | undefined;
  return fields?.idempotency_key?.code === "validation_not_unique";
}
