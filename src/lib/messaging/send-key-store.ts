import type PocketBase from "pocketbase";

import { parsePocketBaseDate } from "../pocketbase/pocketbase-date";
import { pruneCreatedBefore } from "./prune-created-before";
import { isNotFound, toStoreError } from "./session-store-errors";

const COLLECTION = "whatsapp_send_keys";

/** A message sent under an Idempotency-Key: what was sent (a digest) and its id. */
export interface StoredSend {
  fingerprint: string;
  id: string;
}

/**
 * The sends made under an Idempotency-Key, in PocketBase (`whatsapp_send_keys`), so that
 * a key outlives the instance that ran the session: its restart, or the session's move
 * to another instance. A key counts for `ttlMs` after its send; a record older than that
 * is deleted when the key comes again, and by the daily cleanup (pruneOlderThan).
 */
export class SendKeyStore {
  readonly #pb: PocketBase;
  readonly #ttlMs: number;

  constructor(pb: PocketBase, ttlMs: number) {
    this.#pb = pb;
    this.#ttlMs = ttlMs;
  }

  /**
   * The send recorded for `userId` under `key` within the TTL, or null.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async find(userId: string, key: string): Promise<StoredSend | null> {
    const collection = this.#pb.collection(COLLECTION);
    try {
      const record = await collection.getFirstListItem(this.#pb.filter("user = {:userId} && idempotency_key = {:key}", { userId, key }));
      // A record whose date cannot be read counts as live: sending again is the worse mistake.
      const created = parsePocketBaseDate(record.created);
      if (created === null || created >= Date.now() - this.#ttlMs) {
        return { fingerprint: record.fingerprint as string, id: record.message_id as string };
      }
      // Expired: the key may be used afresh (the unique index would refuse its new record).
      // Deleted meanwhile (404) is null all the same, below.
      await collection.delete(record.id);
      return null;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toStoreError(error, "look up the Idempotency-Key");
    }
  }

  /**
   * Records a send made under `key`.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async record(userId: string, key: string, send: StoredSend): Promise<void> {
    try {
      await this.#pb.collection(COLLECTION).create({ user: userId, idempotency_key: key, fingerprint: send.fingerprint, message_id: send.id });
    } catch (error) {
      throw toStoreError(error, "record the Idempotency-Key");
    }
  }

  /**
   * Deletes the keys recorded before `before`; returns how many.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  pruneOlderThan(before: Date): Promise<number> {
    return pruneCreatedBefore(this.#pb, "/api/wavault/send-keys/prune", before, "delete old Idempotency-Keys");
  }
}
