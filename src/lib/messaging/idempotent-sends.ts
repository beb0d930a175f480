import { createHash } from "node:crypto";

/** An Idempotency-Key sent again with another message than the first time. */
export class IdempotencyKeyReusedError extends Error {
  readonly code = "idempotency_key_reused";
  constructor() {
    super("This Idempotency-Key was used for another message.");
    this.name = "IdempotencyKeyReusedError";
  }
}

/** How long a key is remembered: a client retries within minutes, a day leaves room for a queue's. */
const KEY_TTL_MS = 24 * 60 * 60_000;
/** The most keys held (up to ~0.7 KB each, a 255-character key); past it the oldest go first. */
const MAX_KEYS = 50_000;
/** The most keys of one user: one user's volume does not push out everyone else's keys. */
const MAX_KEYS_PER_USER = 2_000;

interface Sent {
  userId: string;
  at: number;
  fingerprint: string;
  id: Promise<string>;
}

/**
 * The messages this process sent under an Idempotency-Key, so that a request retried
 * after a lost answer (a timeout, a 504 `forward_failed` when the request may have got
 * there) sends nothing twice: the same user, key and message get the first send's id,
 * and a retry that arrives while the first send is still under way waits for it. A send
 * that failed is forgotten: its retry sends (one that failed after WhatsApp took the
 * message, a client stopping mid-send, may then go out twice). Held in memory on the
 * instance that runs the session (every instance forwards sends there): a key outlives
 * neither a restart of that instance nor a move of the session to another.
 */
export class IdempotentSends {
  /** Every key held, oldest first (each user's too). */
  readonly #sent = new Map<string, Sent>();
  /** Each user's keys, oldest first. */
  readonly #byUser = new Map<string, Set<string>>();

  /**
   * Sends with `send` unless `userId` sent this message under `key` in the last day;
   * returns the message id, and whether it was that earlier send's.
   * @throws IdempotencyKeyReusedError when the key went with another message; what `send` throws
   */
  async send(userId: string, key: string, message: { to: string; text: string }, send: () => Promise<string>): Promise<{ id: string; replayed: boolean }> {
    this.#forgetExpired();
    const slot = `${userId}\n${key}`;
    const fingerprint = createHash("sha256").update(`${message.to}\n${message.text}`).digest("hex");
    const earlier = this.#sent.get(slot);
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
      return { id: await earlier.id, replayed: true };
    }
    const sent: Sent = { userId, at: Date.now(), fingerprint, id: send() };
    this.#remember(slot, sent);
    try {
      return { id: await sent.id, replayed: false };
    } catch (error) {
      if (this.#sent.get(slot) === sent) this.#forget(slot);
      throw error;
    }
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
