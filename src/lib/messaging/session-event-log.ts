import type PocketBase from "pocketbase";

import { log } from "../log";
import { parsePocketBaseDate } from "../pocketbase/pocketbase-date";
import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { SESSIONS_COLLECTION, type SessionStatus } from "./database-session-store";
import { pruneCreatedBefore } from "./prune-created-before";
import { errorCode, isNotFound, toStoreError } from "./session-store-errors";

export const EVENTS_COLLECTION = "whatsapp_session_events";

/**
 * What is recorded about a session (the migration's `event` values):
 * status (every transition), qr_issued (the first QR of each wait for a scan; never its
 * content), archive_saved, archive_failed (saves started failing, or their cause changed), restore / restore_failed (each restore tried at a start),
 * restore_outcome (whether that start then reached ready without a QR: the product's
 * promise), lease_claimed / lease_lost / lease_taken_over, logout, stale_closed.
 */
export type SessionEventType =
  | "status"
  | "qr_issued"
  | "archive_saved"
  | "archive_failed"
  | "restore"
  | "restore_failed"
  | "restore_outcome"
  | "lease_claimed"
  | "lease_lost"
  | "lease_taken_over"
  | "logout"
  | "stale_closed";

export interface SessionEvent {
  event: SessionEventType;
  status: SessionStatus | null;
  data: Record<string, unknown>;
  /** When it happened, by the clock of the instance that recorded it (ISO 8601). */
  at: string;
  /** When PocketBase stored it: later than `at` by the write queue's delay. */
  created: string;
}

type EventFields = { status?: SessionStatus; data?: Record<string, unknown> };

/**
 * Writes and reads `whatsapp_session_events`. Recording never throws and never holds
 * its caller up; one user's events are written one at a time, in the order recorded.
 */
export class SessionEventLog {
  readonly #pb: PocketBase;
  readonly #now: () => Date;
  readonly #sessionIds = new Map<string, string>();
  readonly #queues = new Map<string, Promise<void>>();

  constructor(pb: PocketBase, options: { now?: () => Date } = {}) {
    this.#pb = pb;
    this.#now = options.now ?? (() => new Date());
  }

  /** Records an event of the user's session, as of now (written in the background, in order). */
  record(userId: string, event: SessionEventType, fields: EventFields = {}): void {
    const at = this.#now().toISOString();
    const previous = this.#queues.get(userId) ?? Promise.resolve();
    const next = previous.then(() => this.#write(userId, event, fields, at));
    this.#queues.set(userId, next);
    void next.finally(() => {
      if (this.#queues.get(userId) === next) this.#queues.delete(userId);
    });
  }

  /** Resolves once every event recorded so far for the user is written (or given up). */
  async flushed(userId: string): Promise<void> {
    await this.#queues.get(userId);
  }

  /** Resolves once every event recorded so far, for every user, is written (or given up). */
  async flushedAll(): Promise<void> {
    await Promise.all(this.#queues.values());
  }

  /**
   * The user's latest events, newest first by when they happened (`at`), which is not
   * always the order they were stored in when two instances handed a session over.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async list(userId: string, limit = 20): Promise<SessionEvent[]> {
    try {
      const page = await this.#pb.collection(EVENTS_COLLECTION).getList(1, limit, {
        filter: this.#pb.filter("user = {:user}", { user: userId }),
        sort: "-at,-created,-@rowid",
        fields: "event,status,data,at,created",
        skipTotal: true,
      });
      const iso = (date: unknown) => new Date(parsePocketBaseDate(date) ?? 0).toISOString();
      return page.items.map((item) => ({
        event: item.event as SessionEventType,
        status: (item.status as SessionStatus) || null,
        data: (item.data as Record<string, unknown>) ?? {},
        at: iso(item.at || item.created),
        created: iso(item.created),
      }));
    } catch (error) {
      throw toStoreError(error, "list session events");
    }
  }

  /**
   * Deletes every event older than `before`; returns how many.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  pruneOlderThan(before: Date): Promise<number> {
    return pruneCreatedBefore(this.#pb, "/api/wavault/events/prune", before, "delete old session events");
  }

  /**
   * Restores tried since `since`, and those that reached ready without a QR.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async restoreStats(since: Date): Promise<{ attempted: number; succeeded: number }> {
    const count = async (filter: string) =>
      (await this.#pb.collection(EVENTS_COLLECTION).getList(1, 1, { filter: this.#pb.filter(filter, { since }), fields: "id" })).totalItems;
    try {
      const [attempted, succeeded] = await Promise.all([
        count("event = 'restore_outcome' && created >= {:since}"),
        count("event = 'restore_outcome' && created >= {:since} && data.success = true"),
      ]);
      return { attempted, succeeded };
    } catch (error) {
      throw toStoreError(error, "count restores");
    }
  }

  /** Forgets which record holds the user's session (it was deleted: a logout, a cleanup). */
  forgetSession(userId: string): void {
    this.#sessionIds.delete(userId);
  }

  async #write(userId: string, event: SessionEventType, fields: EventFields, at: string) {
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const session = await this.#sessionIdOf(userId);
        await this.#pb.collection(EVENTS_COLLECTION).create({ user: userId, session, event, status: fields.status ?? "", data: fields.data ?? {}, at });
        return;
      } catch (error) {
        // A cached session id whose record is gone: look it up again once.
        if (attempt === 1 && isPocketBaseError(error, 400) && this.#sessionIds.has(userId)) {
          this.#sessionIds.delete(userId);
          continue;
        }
        log("warn", "Failed to record a session event", { userId, event, code: errorCode(toStoreError(error, "record a session event")) });
        return;
      }
    }
  }

  async #sessionIdOf(userId: string): Promise<string> {
    const cached = this.#sessionIds.get(userId);
    if (cached) return cached;
    try {
      const record = await this.#pb
        .collection(SESSIONS_COLLECTION)
        .getFirstListItem(this.#pb.filter("user = {:user}", { user: userId }), { fields: "id" });
      this.#sessionIds.set(userId, record.id);
      return record.id;
    } catch (error) {
      if (isNotFound(error)) return ""; // no session record (yet, or any more): the event keeps only the user
      throw error;
    }
  }
}
