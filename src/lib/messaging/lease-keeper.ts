import { log } from "../log";
import { errorCode } from "./session-store-errors";
import { LeaseLostError, type Lease, type SessionLease } from "./session-lease";

/**
 * Holds one channel's lease: claims it, renews it every third of its TTL, and says when
 * it was lost (another instance took the session over). Renewals go through the
 * channel's write queue, in order with its other writes to the same record.
 */
export class LeaseKeeper {
  readonly #leases: SessionLease;
  readonly #userId: string;
  readonly #serialize: <T>(work: () => Promise<T>) => Promise<T>;
  readonly #onLost: () => void;
  #lease: Lease | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    leases: SessionLease,
    userId: string,
    serialize: <T>(work: () => Promise<T>) => Promise<T>,
    onLost: () => void,
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

  /** @throws SessionLeasedElsewhereError when another instance holds the session. */
  async claim(): Promise<Lease> {
    const lease = await this.#leases.claim(this.#userId);
    this.#lease = lease;
    log("info", "Session lease claimed", { userId: this.#userId, owner: lease.owner, generation: lease.generation });
    this.#timer = setInterval(() => this.#renew(), Math.max(100, Math.floor(this.#leases.ttlMs / 3)));
    this.#timer.unref();
    return lease;
  }

  stopRenewing(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Another instance took over (an upload was refused): forget the lease, tell the channel. */
  lost(): void {
    if (!this.#lease) return;
    log("warn", "Session lease lost to another instance", { userId: this.#userId, generation: this.#lease.generation });
    this.#lease = null;
    this.stopRenewing();
    this.#onLost();
  }

  /** Gives the lease up for the next instance; failures are logged (it then expires). */
  async release(): Promise<void> {
    this.stopRenewing();
    const lease = this.#lease;
    this.#lease = null;
    if (!lease) return;
    await this.#serialize(() => this.#leases.release(lease)).catch((error: unknown) =>
      log("warn", "Failed to release the session lease", { userId: this.#userId, code: errorCode(error) }),
    );
  }

  #renew(): void {
    const current = this.#lease;
    if (!current) return;
    this.#serialize(() => this.#leases.renew(current)).then(
      (renewed) => {
        if (this.#lease === current) this.#lease = renewed; // not if released meanwhile
      },
      (error: unknown) => {
        if (error instanceof LeaseLostError) this.lost();
        else log("warn", "Failed to renew the session lease", { userId: this.#userId, code: errorCode(error) });
      },
    );
  }
}
