import { leaseKey, type Lease, type SessionLease } from "./session-lease";

/** What a round of renewals made of one lease; `sentAt`: performance.now() when its request went out. */
export type RenewalOutcome =
  | { kind: "renewed"; lease: Lease; sentAt: number }
  | { kind: "lost" }
  | { kind: "failed"; error: unknown };

/**
 * Renews every lease a SessionLease's channels hold, every third of the TTL, all in one
 * request (SessionLease.renewMany: one PocketBase transaction). Every running session
 * renews its lease that often, so one request per session would make renewals
 * PocketBase's main load at scale: 10,000 sessions, 500 requests a second. One round at
 * a time: a round still under way when the next is due skips that one.
 */
export class LeaseRenewer {
  readonly #leases: SessionLease;
  readonly #held = new Map<object, { lease: Lease; onOutcome: (outcome: RenewalOutcome) => void }>();
  #timer: NodeJS.Timeout | null = null;
  #renewing = false;

  constructor(leases: SessionLease) {
    this.#leases = leases;
  }

  /**
   * Renews `lease` in every round from the next on (within a third of the TTL), until
   * the returned function is called; `onOutcome` hears what each round made of it.
   */
  hold(lease: Lease, onOutcome: (outcome: RenewalOutcome) => void): () => void {
    const key = {};
    this.#held.set(key, { lease, onOutcome });
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#round(), Math.max(100, Math.floor(this.#leases.ttlMs / 3)));
      this.#timer.unref();
    }
    return () => {
      this.#held.delete(key);
      if (this.#held.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    };
  }

  async #round(): Promise<void> {
    const round = [...this.#held.entries()];
    if (this.#renewing || round.length === 0) return;
    this.#renewing = true;
    const sentAt = performance.now();
    // Each outcome only for a lease still held when it comes (one given up meanwhile hears nothing).
    const tell = (key: object, outcome: RenewalOutcome) => this.#held.get(key)?.onOutcome(outcome);
    try {
      const { renewed, lost } = await this.#leases.renewMany(round.map(([, held]) => held.lease));
      const next = new Map(renewed.map((lease) => [leaseKey(lease.userId, lease.generation), lease]));
      const gone = new Set(lost.map((lease) => leaseKey(lease.userId, lease.generation)));
      for (const [key, held] of round) {
        const id = leaseKey(held.lease.userId, held.lease.generation);
        const lease = next.get(id);
        if (lease) {
          held.lease = lease;
          tell(key, { kind: "renewed", lease, sentAt });
        } else if (gone.has(id)) tell(key, { kind: "lost" });
        else tell(key, { kind: "failed", error: new Error("not renewed in this round") });
      }
    } catch (error) {
      for (const [key] of round) tell(key, { kind: "failed", error });
    } finally {
      this.#renewing = false;
    }
  }
}

const renewers = new WeakMap<SessionLease, LeaseRenewer>();

/** The one renewer of `leases`' channels (one shared beat and request per process's SessionLease). */
export function leaseRenewerOf(leases: SessionLease): LeaseRenewer {
  let renewer = renewers.get(leases);
  if (!renewer) renewers.set(leases, (renewer = new LeaseRenewer(leases)));
  return renewer;
}
