import { log } from "../log";
import { errorCode } from "./session-store-errors";
import { leaseRenewerOf, type RenewalOutcome } from "./lease-renewer";
import type { Lease, SessionLease } from "./session-lease";

/** Why a channel lost its lease: another instance took it over, or it could not be renewed in time. */
export type LeaseLossReason = "taken_over" | "not_renewed";

/**
 * Gives up a lease that could not be renewed at this share of its TTL after the last
 * successful claim or renewal was sent. PocketBase counts the TTL from when it received
 * that request, so this instance lets go before PocketBase lets another one claim.
 */
const GIVE_UP_AT = 5 / 6;

/**
 * Holds one channel's lease: claims it, renews it every third of its TTL (with the
 * process's other leases, in one request: LeaseRenewer), and says when
 * it was lost — another instance took the session over, or no renewal got through for
 * most of a TTL (PocketBase unreachable from here, this process stalled). In the second
 * case another instance that can reach PocketBase may claim the session once the lease
 * expires there, so the channel must stop before then: two browsers running one linked
 * device corrupt its encryption sessions.
 *
 * Renewals do not wait in the channel's write queue (a slow upload would hold them past
 * the deadline); PocketBase checks and writes each round in its own transaction, so they
 * cannot undo another write. The release does wait, after the channel's last status.
 */
export class LeaseKeeper {
  readonly #leases: SessionLease;
  readonly #userId: string;
  readonly #serialize: <T>(work: () => Promise<T>) => Promise<T>;
  readonly #onLost: (reason: LeaseLossReason) => void;
  #lease: Lease | null = null;
  /** A lease given up on its deadline: perhaps still ours in PocketBase, released once the browser is gone. */
  #lapsed: Lease | null = null;
  /** Ends this lease's renewals (LeaseRenewer.hold), while they run. */
  #stopRenewals: (() => void) | null = null;
  #deadline: NodeJS.Timeout | null = null;

  constructor(
    leases: SessionLease,
    userId: string,
    serialize: <T>(work: () => Promise<T>) => Promise<T>,
    onLost: (reason: LeaseLossReason) => void,
  ) {
    this.#leases = leases;
    this.#userId = userId;
    this.#serialize = serialize;
    this.#onLost = onLost;
  }

  /** The lease while this channel holds it. */
  get lease(): Lease | null {
    return this.#lease;
  }

  /**
   * @param options.onlyIfKeepRunning a start by itself (see SessionLease.claim)
   * @throws SessionLeasedElsewhereError when another instance holds the session;
   *   SessionNotWantedError (onlyIfKeepRunning) when it is not to start by itself
   */
  async claim(options: { onlyIfKeepRunning?: boolean } = {}): Promise<Lease> {
    const sentAt = performance.now();
    const lease = await this.#leases.claim(this.#userId, options);
    this.#lease = lease;
    log("info", "Session lease claimed", { userId: this.#userId, owner: lease.owner, generation: lease.generation });
    this.stopRenewing(); // a second claim must not leave the first one renewing
    this.#stopRenewals = leaseRenewerOf(this.#leases).hold(lease, (outcome) => this.#renewed(lease, outcome));
    this.#armDeadline(sentAt);
    return lease;
  }

  /** Stops renewing (and the deadline: the channel is stopping, and every write is still fenced). */
  stopRenewing(): void {
    this.#stopRenewals?.();
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#stopRenewals = this.#deadline = null;
  }

  /** The lease is gone (an upload was refused, or the deadline passed): forget it, tell the channel. */
  lost(reason: LeaseLossReason = "taken_over"): void {
    if (!this.#lease) return;
    const message =
      reason === "taken_over"
        ? "Session lease lost to another instance"
        : "Session lease not renewed in time: stopping the client before another instance may claim it";
    log("warn", message, { userId: this.#userId, generation: this.#lease.generation });
    if (reason === "not_renewed") this.#lapsed = this.#lease;
    this.#lease = null;
    this.stopRenewing();
    this.#onLost(reason);
  }

  /**
   * Gives the lease up for the next instance — or one given up on its deadline, which a
   * renewal that got through unanswered may still hold (fenced: a no-op if another
   * instance took it). Failures are logged (it then expires).
   */
  async release(): Promise<void> {
    this.stopRenewing();
    const lease = this.#lease ?? this.#lapsed;
    this.#lease = this.#lapsed = null;
    if (!lease) return;
    await this.#serialize(() => this.#leases.release(lease)).catch((error: unknown) =>
      log("warn", "Failed to release the session lease", { userId: this.#userId, code: errorCode(error) }),
    );
  }

  /** (Re)starts the countdown from when the last successful claim or renewal was sent. */
  #armDeadline(sentAt: number): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    const ms = sentAt + this.#leases.ttlMs * GIVE_UP_AT - performance.now();
    this.#deadline = setTimeout(() => this.lost("not_renewed"), Math.max(0, ms));
    this.#deadline.unref();
  }

  /** A round of renewals (see LeaseRenewer) made this of the lease claimed as `claimed`. */
  #renewed(claimed: Lease, outcome: RenewalOutcome): void {
    // Released or lost meanwhile; or claimed again (a new hold renews that one).
    if (this.#lease?.generation !== claimed.generation || this.#lease.userId !== claimed.userId) return;
    if (outcome.kind === "renewed") {
      this.#lease = outcome.lease;
      this.#armDeadline(outcome.sentAt);
    } else if (outcome.kind === "lost") this.lost();
    else log("warn", "Failed to renew the session lease", { userId: this.#userId, code: errorCode(outcome.error) });
  }
}
