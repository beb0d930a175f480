import { createHash } from "node:crypto";

import { log } from "../log";
import type { SendKeyStore } from "./send-key-store";
import { errorCode } from "./session-store-errors";

/** An Idempotency-Key sent again with another message than the first time. */
export class IdempotencyKeyReusedError extends Error {
  readonly code = "idempotency_key_reused";
  constructor() {
    super("This Idempotency-Key was used for another message.");
    this.name = "IdempotencyKeyReusedError";
  }
}

/**
 * An Idempotency-Key claimed for a send whose outcome is not recorded, claimed less than
 * IN_PROGRESS_MS ago: most likely still under way on another instance (a session that
 * moved meanwhile). Nothing is sent again under this key; a retry shortly replays.
 */
export class IdempotencyKeyInProgressError extends Error {
  readonly code = "idempotency_key_in_progress";
  constructor() {
    super("A send under this Idempotency-Key has started and its outcome is not recorded yet.");
    this.name = "IdempotencyKeyInProgressError";
  }
}

/**
 * An Idempotency-Key claimed for a send longer than IN_PROGRESS_MS ago whose outcome was
 * never recorded: the instance sending it stopped mid-send, most likely. The message may
 * have gone out; nothing is ever sent under this key (until it expires).
 */
export class IdempotencyKeyOutcomeUnknownError extends Error {
  readonly code = "idempotency_key_outcome_unknown";
  constructor() {
    super("A send under this Idempotency-Key started a while ago and its outcome was never recorded.");
    this.name = "IdempotencyKeyOutcomeUnknownError";
  }
}

/** Twice the longest a send may take (SEND_TIMEOUT_MS): a claim without an outcome for longer is taken for abandoned. */
export const IN_PROGRESS_MS = 2 * 60_000;

/** What a key's message is known by: SHA-256 of its recipient and text, in hex. */
export function messageFingerprint(message: { to: string; text: string }): string {
  return createHash("sha256").update(`${message.to}\n${message.text}`).digest("hex");
}

/** How long a key is remembered: a client retries within minutes, a day leaves room for a queue's. */
export const KEY_TTL_MS = 24 * 60 * 60_000;
/** The most keys held (up to ~0.7 KB each, a 255-character key); past it the oldest go first. */
const MAX_KEYS = 50_000;
/** The most keys of one user: one user's volume does not push out everyone else's keys. */
const MAX_KEYS_PER_USER = 2_000;

interface Sent {
  userId: string;
  at: number;
  fingerprint: string;
  outcome: Promise<Outcome>;
}

interface Outcome {
  id: string;
  replayed: boolean;
  /** Replayed from the store's record: the key's day runs from that send, not from now. */
  stored?: true;
}

/**
 * The messages sent under an Idempotency-Key, so that a request retried after a lost
 * answer (a timeout, a 504 `forward_failed` when the request may have got there) sends
 * nothing twice: the same user, key and message get the first send's id, and a retry
 * that arrives while the first send is still under way waits for it. A send that failed
 * is forgotten: its retry sends (one that failed after WhatsApp took the message, a
 * client stopping mid-send, may then go out twice). Held in memory on the instance that
 * runs the session (every instance forwards sends there), and, with a `store`, claimed in
 * PocketBase before the send and completed with its id after: a key then outlives a
 * restart of that instance and a move of the session to another, and a send is never
 * made twice by two instances, nor after one died mid-send (the retry is refused rather
 * than sent: IdempotencyKeyInProgressError, later IdempotencyKeyOutcomeUnknownError).
 */
export class IdempotentSends {
  readonly #store: SendKeyStore | null;
  /** Every key held, oldest first (each user's too). */
  readonly #sent = new Map<string, Sent>();
  /** Each user's keys, oldest first. */
  readonly #byUser = new Map<string, Set<string>>();

  constructor(store: SendKeyStore | null = null) {
    this.#store = store;
  }

  /**
   * Sends with `send` unless `userId` sent this message under `key` in the last day;
   * returns the message id, and whether it was that earlier send's.
   * @throws IdempotencyKeyReusedError when the key went with another message;
   *   IdempotencyKeyInProgressError, IdempotencyKeyOutcomeUnknownError when it was claimed
   *   and its outcome is not recorded;
   *   PocketBaseUnavailableError, SessionStoreError when the store cannot be asked
   *   (nothing is sent then); what `send` throws
   */
  async send(userId: string, key: string, message: { to: string; text: string }, send: () => Promise<string>): Promise<{ id: string; replayed: boolean }> {
    this.#forgetExpired();
    const slot = `${userId}\n${key}`;
    const fingerprint = messageFingerprint(message);
    const earlier = this.#sent.get(slot);
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
      return { id: (await earlier.outcome).id, replayed: true };
    }
    // Remembered before anything is awaited: a retry arriving meanwhile joins this one.
    const sent: Sent = { userId, at: Date.now(), fingerprint, outcome: this.#sendOnce(userId, key, fingerprint, send) };
    this.#remember(slot, sent);
    try {
      const { id, replayed, stored } = await sent.outcome;
      // Held here no longer than the store holds it: the next retry asks the store again.
      if (stored && this.#sent.get(slot) === sent) this.#forget(slot);
      return { id, replayed };
    } catch (error) {
      if (this.#sent.get(slot) === sent) this.#forget(slot);
      throw error;
    }
  }

  /**
   * Deletes the recorded keys older than a day (the daily cleanup); how many (0 without a store).
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  pruneRecorded(): Promise<number> {
    return this.#store ? this.#store.pruneOlderThan(new Date(Date.now() - KEY_TTL_MS)) : Promise.resolve(0);
  }

  /**
   * The send the store recorded under the key (a restart or a move ago), or a new one:
   * claimed in the store before it is made, completed once it is out.
   */
  async #sendOnce(userId: string, key: string, fingerprint: string, send: () => Promise<string>): Promise<Outcome> {
    const claim = await this.#store?.claim(userId, key, fingerprint);
    if (claim && !claim.claimed) {
      if (claim.stored.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
      if (claim.stored.id === null) {
        const { claimedAt } = claim.stored;
        throw claimedAt !== null && Date.now() - claimedAt > IN_PROGRESS_MS ? new IdempotencyKeyOutcomeUnknownError() : new IdempotencyKeyInProgressError();
      }
      return { id: claim.stored.id, replayed: true, stored: true };
    }
    let id: string;
    try {
      id = await send();
    } catch (error) {
      const late = lateOutcomeOf(error);
      if (claim && late) {
        // Not answered in time: it may yet go out. The claim stays (retries are refused as
        // in progress) and gets the send's outcome when it comes.
        late.then(
          (lateId) => this.#complete(userId, claim.claimId, lateId),
          () => this.#release(claim.claimId),
        );
      } else if (claim) {
        // Not sent: the key is free again, here (send() forgets it) and in the store.
        await this.#release(claim.claimId);
      }
      throw error;
    }
    // Sent: the answer says so whatever the record does.
    if (claim) await this.#complete(userId, claim.claimId, id);
    return { id, replayed: false };
  }

  /** Records the claimed send's message id (a failure is logged: elsewhere its retries are refused, not sent). */
  async #complete(userId: string, claimId: string, messageId: string): Promise<void> {
    await this.#store!.complete(claimId, messageId).catch((error: unknown) =>
      log("warn", "Could not record the message of an Idempotency-Key; elsewhere its retries are refused, not sent", {
        userId,
        code: errorCode(error),
      }),
    );
  }

  /** Gives the claim of a send that did not go out back; should PocketBase not answer now, later (retries meanwhile are refused as in progress). */
  async #release(claimId: string): Promise<void> {
    await this.#store!.release(claimId).catch(() => this.#store!.releaseInBackground(claimId));
  }

  #remember(slot: string, sent: Sent): void {
    this.#sent.set(slot, sent);
    const mine = this.#byUser.get(sent.userId) ?? new Set<string>();
    this.#byUser.set(sent.userId, mine.add(slot));
    if (mine.size > MAX_KEYS_PER_USER) this.#forget(mine.values().next().value!);
    if (this.#sent.size > MAX_KEYS) this.#forget(this.#sent.keys().next().value!);
  }

  #forget(slot: string): void {
    const sent = this.#sent.get(slot);
    if (!sent) return;
    this.#sent.delete(slot);
    const mine = this.#byUser.get(sent.userId)!;
    mine.delete(slot);
    if (mine.size === 0) this.#byUser.delete(sent.userId);
  }

  /** Keys are added in time order: the expired ones are at the front. */
  #forgetExpired(): void {
    const cutoff = Date.now() - KEY_TTL_MS;
    for (const [slot, sent] of this.#sent) {
      if (sent.at >= cutoff) return;
      this.#forget(slot);
    }
  }
}

/**
 * The outcome still to come of a send that was not answered in time (SendTimedOutError's
 * `late`), read by its shape: the error may come from another bundle's copy of the class.
 */
function lateOutcomeOf(error: unknown): Promise<string> | null {
  const late = (error as { code?: unknown; late?: unknown } | null)?.late;
  return errorCode(error) === "send_timeout" && late instanceof Promise ? (late as Promise<string>) : null;
}
