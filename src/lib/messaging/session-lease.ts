import { randomBytes } from "node:crypto";
import type PocketBase from "pocketbase";

import { log } from "../log";
import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { toStoreError } from "./session-store-errors";

/** Which instance runs a user's session, and under which generation it uploads. */
export interface Lease {
  userId: string;
  owner: string;
  generation: number;
  expiresAt: Date;
  /** On a claim: the owner whose lapsed lease this one took over (it never released it), else "". */
  takenOverFrom?: string;
}

/** Another live instance runs this session; `ownerUrl` is where it answers, when it said (INSTANCE_URL). */
export class SessionLeasedElsewhereError extends Error {
  readonly code = "leased_elsewhere";
  constructor(
    readonly userId: string,
    readonly owner: string,
    readonly expiresAt: Date,
    readonly ownerUrl: string | null = null,
  ) {
    super(`The WhatsApp session is running on another instance (${owner}) until ${expiresAt.toISOString()}.`);
    this.name = "SessionLeasedElsewhereError";
  }
}

/** This instance no longer holds the lease: another took the session over. */
export class LeaseLostError extends Error {
  readonly code = "lease_lost";
  constructor(readonly userId: string, readonly generation: number) {
    super(`The lease on this WhatsApp session (generation ${generation}) was taken over by another instance.`);
    this.name = "LeaseLostError";
  }
}

/** A conditional claim found the session not to be started by itself: the user stopped it, nothing is stored, or it waits after failed resumes. */
export class SessionNotWantedError extends Error {
  readonly code = "not_wanted";
  constructor(readonly userId: string) {
    super("The WhatsApp session is not marked to keep running, has no stored archive, or waits after failed resumes.");
    this.name = "SessionNotWantedError";
  }
}

/** The most leases one renew-many request carries (MAX_RENEWALS in pocketbase/pb_hooks/wavault-leases.js). */
const MAX_RENEWALS = 1000;

/** Renewals one by one (hooks without renew-many): this many requests at once, for this long before the batch is tried again. */
const ONE_BY_ONE_AT_ONCE = 32;
const ONE_BY_ONE_FOR_MS = 10 * 60_000;

/** A lease's identity: its user and generation (one user's leases in one process could differ by generation). */
export const leaseKey = (userId: string, generation: number) => `${userId}:${generation}`;

interface LeaseResponse {
  user: string;
  owner: string;
  ownerUrl?: string;
  generation: number;
  expiresAt: string;
  takenOverFrom?: string;
}

const toLease = (response: LeaseResponse): Lease => ({
  userId: response.user,
  owner: response.owner,
  generation: response.generation,
  expiresAt: new Date(response.expiresAt),
  ...(response.takenOverFrom ? { takenOverFrom: response.takenOverFrom } : {}),
});

/**
 * Leases through the PocketBase hook routes in pocketbase/pb_hooks/leases.pb.js: each
 * check-and-set runs in one transaction there. A lease lasts `ttlMs` unless renewed;
 * an expired one can be taken over, and every takeover starts a new generation.
 */
export class SessionLease {
  readonly #pb: PocketBase;
  readonly #owner: string;
  readonly #ownerUrl: string | undefined;
  readonly #ttlMs: number;
  /** Until then renewMany renews one lease a request: PocketBase answered that it has no renew-many route. */
  #oneByOneUntil = 0;

  /** `ownerUrl`: where this instance answers the others (INSTANCE_URL), recorded with each lease it claims. */
  constructor(pb: PocketBase, options: { instanceId: string; ttlMs: number; ownerUrl?: string }) {
    this.#pb = pb;
    // The instance id plus a token of this process: two processes given the same
    // INSTANCE_ID still never share a lease (nor a generation).
    this.#owner = `${options.instanceId}/${randomBytes(4).toString("hex")}`;
    this.#ttlMs = options.ttlMs;
    this.#ownerUrl = options.ownerUrl;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Who this process's leases name as their owner. */
  get owner(): string {
    return this.#owner;
  }

  /**
   * Takes the user's lease (or keeps it, when this instance holds it). With
   * `onlyIfKeepRunning` (a session starting by itself), only if the session is marked to
   * keep running, has a stored archive and its next resume is due, checked in the same transaction (a user's
   * stop just before is never undone), and only if no lease is live, this instance's
   * own included. With `onlyIfArchived` (a tool working on the stored archive), only if
   * the session has an archive: such a claim never creates a session record.
   * @throws SessionLeasedElsewhereError, SessionNotWantedError, PocketBaseUnavailableError, SessionStoreError
   */
  async claim(userId: string, { onlyIfKeepRunning = false, onlyIfArchived = false }: { onlyIfKeepRunning?: boolean; onlyIfArchived?: boolean } = {}): Promise<Lease> {
    try {
      const body = {
        user: userId,
        owner: this.#owner,
        ttlMs: this.#ttlMs,
        ...(this.#ownerUrl ? { ownerUrl: this.#ownerUrl } : {}),
        ...(onlyIfKeepRunning ? { onlyIfKeepRunning } : {}),
        ...(onlyIfArchived ? { onlyIfArchived } : {}),
      };
      return toLease(await this.#send<LeaseResponse>("claim", body));
    } catch (error) {
      if (isPocketBaseError(error, 412)) throw new SessionNotWantedError(userId);
      if (isPocketBaseError(error, 409)) {
        const holder = error.response as Partial<LeaseResponse>;
        throw new SessionLeasedElsewhereError(userId, String(holder.owner), new Date(String(holder.expiresAt)), holder.ownerUrl || null);
      }
      throw toStoreError(error, "claim the session lease");
    }
  }

  /**
   * Extends a held lease by the TTL. A renewal counts as the session's activity
   * (last_active), unless `keepLastActive` (a tool working on it, not the user).
   * @throws LeaseLostError when another instance took it over.
   */
  async renew(lease: Lease, { keepLastActive = false }: { keepLastActive?: boolean } = {}): Promise<Lease> {
    try {
      const body = { user: lease.userId, owner: lease.owner, generation: lease.generation, ttlMs: this.#ttlMs, ...(keepLastActive ? { keepLastActive } : {}) };
      return toLease(await this.#send<LeaseResponse>("renew", body));
    } catch (error) {
      if (isPocketBaseError(error, 409)) throw new LeaseLostError(lease.userId, lease.generation);
      throw toStoreError(error, "renew the session lease");
    }
  }

  /**
   * Renews many leases this process holds in one request (in one transaction, by
   * PocketBase's clock), as `renew` does one; `lost`: those another instance took over.
   * Against hooks without the batch route (older than this app) it renews them one by
   * one instead, 32 at a time, trying the batch again after 10 minutes; a lease whose
   * own request failed then is in neither list.
   * @throws PocketBaseUnavailableError, SessionStoreError when the batch request failed
   */
  async renewMany(leases: Lease[]): Promise<{ renewed: Lease[]; lost: Lease[] }> {
    const renewed: Lease[] = [];
    const lost: Lease[] = [];
    for (let start = 0; start < leases.length; start += MAX_RENEWALS) {
      const chunk = leases.slice(start, start + MAX_RENEWALS);
      const answer = Date.now() < this.#oneByOneUntil ? null : await this.#renewChunk(chunk);
      if (answer) {
        // Every lease still held comes back renewed; the rest were taken over.
        const held = new Set(answer.renewed.map((lease) => leaseKey(lease.user, lease.generation)));
        renewed.push(...answer.renewed.map(toLease));
        lost.push(...chunk.filter((lease) => !held.has(leaseKey(lease.userId, lease.generation))));
        continue;
      }
      // One request a lease, a few at a time: in sequence, a large instance's round would
      // outlast its leases' deadlines.
      let next = 0;
      const worker = async () => {
        for (let lease = chunk[next++]; lease; lease = chunk[next++]) {
          try {
            renewed.push(await this.renew(lease));
          } catch (error) {
            if (error instanceof LeaseLostError) lost.push(lease); // else in neither list: not renewed this time
          }
        }
      };
      await Promise.all(Array.from({ length: ONE_BY_ONE_AT_ONCE }, worker));
    }
    return { renewed, lost };
  }

  /** One renew-many request; null when PocketBase has no such route (its hooks are older than this app). */
  async #renewChunk(chunk: Lease[]): Promise<{ renewed: LeaseResponse[]; lost: string[] } | null> {
    try {
      const body = { owner: this.#owner, ttlMs: this.#ttlMs, leases: chunk.map((lease) => ({ user: lease.userId, generation: lease.generation })) };
      return await this.#send<{ renewed: LeaseResponse[]; lost: string[] }>("renew-many", body);
    } catch (error) {
      if (!isPocketBaseError(error, 404)) throw toStoreError(error, "renew the session leases");
      log("warn", "PocketBase's hooks cannot renew leases in batches (they are older than this app): renewing them one by one for now; upgrade PocketBase's hooks");
      this.#oneByOneUntil = Date.now() + ONE_BY_ONE_FOR_MS;
      return null;
    }
  }

  /** Gives the lease up (a no-op when it was already taken over). */
  async release(lease: Lease): Promise<void> {
    try {
      await this.#send("release", { user: lease.userId, owner: lease.owner, generation: lease.generation });
    } catch (error) {
      throw toStoreError(error, "release the session lease");
    }
  }

  /**
   * One lease request, given up after a third of the TTL (when the next renewal is due):
   * on a dead network path a request would otherwise hang, and with it every write queued
   * behind it on the channel.
   */
  #send<T>(action: "claim" | "renew" | "renew-many" | "release", body: Record<string, unknown>): Promise<T> {
    const signal = AbortSignal.timeout(Math.max(1_000, Math.floor(this.#ttlMs / 3)));
    return this.#pb.send<T>(`/api/wavault/leases/${action}`, { method: "POST", body, signal });
  }
}
