import type PocketBase from "pocketbase";

import { log } from "../log";
import type { WhatsAppChannel } from "./channels/whatsapp-channel";
import type { ConnectionManager } from "./connection-manager";
import { SESSIONS_COLLECTION, type SessionStatus } from "./database-session-store";
import type { SessionLease } from "./session-lease";
import { errorCode, toStoreError } from "./session-store-errors";

export interface SessionResumerOptions {
  pb: PocketBase;
  manager: ConnectionManager;
  leases: SessionLease;
  /** At most this many sessions started per round, one after another (default 10). */
  batch?: number;
  /** The first wait after a failed resume of a user; it doubles per failure, up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** How a resumed client's start ended. */
type Outcome = "ready" | "needs_qr" | "ended";

/**
 * Starts the sessions that are to keep running (`keep_running`: they reached ready and
 * the user has not stopped them) and that no instance runs (no live lease): after a
 * deploy, a restart, a crashed instance or a crashed browser, with no QR and nobody
 * pressing Connect. Each round (`start(intervalMs)`) takes at most `batch` of them, one
 * at a time, while this instance has room; several instances share the work through
 * the leases (a claim checks keep_running in the same transaction, so a user's stop is
 * never undone). A resumed session that asks for a QR (the phone unlinked it meanwhile)
 * is stopped and unmarked; one that fails to start is tried again later, waiting
 * longer after each failure.
 */
export class SessionResumer {
  readonly #options: Required<Omit<SessionResumerOptions, "pb" | "manager" | "leases">> & SessionResumerOptions;
  readonly #failures = new Map<string, { count: number; retryAt: number }>();
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<number> | null = null;
  #stopped = false;

  constructor(options: SessionResumerOptions) {
    this.#options = { batch: 10, backoffMs: 60_000, maxBackoffMs: 30 * 60_000, ...options };
  }

  /** Runs a round now and then every `intervalMs`, until `stop()`. */
  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#stopped = false;
    void this.resumeOnce();
    this.#timer = setInterval(() => void this.resumeOnce(), intervalMs);
    this.#timer.unref();
  }

  /** No further rounds; waits for the one under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#round;
  }

  /** One round (joins one under way): returns how many sessions it started. */
  resumeOnce(): Promise<number> {
    this.#round ??= this.#resume()
      .catch((error: unknown) => {
        log("warn", "Could not look for sessions to resume", { code: errorCode(error), error: String(error) });
        return 0;
      })
      .finally(() => (this.#round = null));
    return this.#round;
  }

  async #resume(): Promise<number> {
    let started = 0;
    for (const userId of await this.#candidates()) {
      if (this.#stopped || started >= this.#options.batch) break;
      if (!this.#options.manager.canCreateConnection(userId)) break; // full: leave the rest to other instances
      if (await this.#resumeUser(userId)) started += 1;
    }
    return started;
  }

  /** Users whose session is to keep running, has an archive and no live lease, longest idle first. */
  async #candidates(): Promise<string[]> {
    const { pb, manager } = this.#options;
    const now = new Date().toISOString().replace("T", " ");
    let records;
    try {
      records = await pb.collection(SESSIONS_COLLECTION).getList(1, 200, {
        filter: pb.filter("keep_running = true && archive != '' && (lease_owner = '' || lease_expires = '' || lease_expires < {:now})", { now }),
        sort: "last_active",
        fields: "user",
      });
    } catch (error) {
      throw toStoreError(error, "find sessions to resume");
    }
    const due = (userId: string) => (this.#failures.get(userId)?.retryAt ?? 0) <= Date.now();
    return records.items.map((record) => String(record.user)).filter((userId) => !manager.get(userId) && due(userId));
  }

  /** Claims and starts one user's session; true when it started (it may still need a QR: then it is stopped). */
  async #resumeUser(userId: string): Promise<boolean> {
    const { manager, leases } = this.#options;
    let lease;
    try {
      // Conditional, in one transaction: still marked, and nobody else took it since the look-up.
      lease = await leases.claim(userId, { onlyIfKeepRunning: true });
    } catch (error) {
      const code = errorCode(error);
      if (code !== "leased_elsewhere" && code !== "not_wanted") log("warn", "Could not claim a session to resume", { userId, code });
      return false;
    }
    let channel: WhatsAppChannel;
    try {
      // The channel claims again as the same owner: it keeps this lease and its generation.
      channel = await manager.connect(userId);
    } catch (error) {
      await leases.release(lease).catch(() => {});
      this.#failed(userId, errorCode(error));
      return false;
    }
    log("info", "Session resumed", { userId });
    void this.#followUp(userId, channel);
    return true;
  }

  /** Watches a resumed client until it is ready, asks for a QR (then stops it), or ends. */
  async #followUp(userId: string, channel: WhatsAppChannel): Promise<void> {
    const outcome = await outcomeOf(channel);
    if (outcome === "ready") {
      this.#failures.delete(userId);
    } else if (outcome === "needs_qr") {
      // Nobody is there to scan it: stop, and leave the session to the user's next connect.
      log("warn", "A resumed session asks for a QR (unlinked on the phone?); stopping it", { userId });
      this.#failures.delete(userId);
      await this.#options.manager.disconnect(userId).catch(() => false);
    } else {
      this.#failed(userId, "ended_before_ready");
    }
  }

  #failed(userId: string, code: string): void {
    const count = (this.#failures.get(userId)?.count ?? 0) + 1;
    const waitMs = Math.min(this.#options.backoffMs * 2 ** (count - 1), this.#options.maxBackoffMs);
    this.#failures.set(userId, { count, retryAt: Date.now() + waitMs });
    log("warn", "A resumed session did not start; trying again later", { userId, code, failures: count, retryInMs: waitMs });
  }
}

/** Resolves with how a client's start ends: ready, a QR (needs a scan), or the channel closing first. */
function outcomeOf(channel: WhatsAppChannel): Promise<Outcome> {
  const settled = (status: SessionStatus): Outcome | null =>
    status === "ready" ? "ready" : status === "qr_ready" ? "needs_qr" : channel.stopping ? "ended" : null;
  const now = settled(channel.status);
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const done = (outcome: Outcome) => {
      channel.off("status", onStatus);
      channel.off("closed", onClosed);
      resolve(outcome);
    };
    const onStatus = (status: SessionStatus) => {
      const outcome = settled(status);
      if (outcome) done(outcome);
    };
    const onClosed = () => done("ended");
    channel.on("status", onStatus);
    channel.once("closed", onClosed);
  });
}
