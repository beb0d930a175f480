import type PocketBase from "pocketbase";

import { log } from "../log";
import { errorCode, toStoreError } from "./session-store-errors";

export const INSTANCES_COLLECTION = "whatsapp_instances";

/** What an instance tells the others about itself on each heartbeat. */
export interface InstanceStanding {
  /** It takes more sessions now: room under its cap, memory budget and disk, and its starts succeed. */
  accepting: boolean;
  /** It takes new links too (clients that wait for a QR scan): accepting, and under its MAX_WHATSAPP_QR_WAITING. */
  acceptingNewLinks: boolean;
  maxConnections: number;
}

/** A live instance as its record says, and how many sessions it runs (its live leases). */
export interface InstanceLoad {
  owner: string;
  instanceId: string;
  url: string;
  accepting: boolean;
  acceptingNewLinks: boolean;
  clients: number;
  maxConnections: number;
  /** How long ago its record was last renewed, by PocketBase's clock. */
  seenSecondsAgo: number;
  /** This process's own record. */
  self: boolean;
}

export interface InstanceRegistryOptions {
  /** This process's lease owner (SessionLease.owner): its record's key, and how its leases are counted. */
  owner: string;
  instanceId: string;
  /** INSTANCE_URL: where the others send a connect they have no room for (see peersWithRoom); shown to operators. */
  url?: string;
  /** A record not renewed for this long is no longer live (the lease TTL: an instance that lost touch has also let its sessions go). */
  ttlMs: number;
}

/**
 * The instances that resume sessions (PocketBase collection `whatsapp_instances`,
 * through the hook routes in pocketbase/pb_hooks/instances.pb.js), so each resumer can
 * leave waiting sessions to a live instance that runs fewer. Each instance renews its
 * own record every third of `ttlMs` while it resumes and deletes it when it stops; one
 * that dies drops out once its record expires. Expiry and the lease counts use
 * PocketBase's clock.
 */
export class InstanceRegistry {
  readonly #pb: PocketBase;
  readonly #options: InstanceRegistryOptions;
  #readStanding: (() => InstanceStanding) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  /** A heartbeat asked for while one was under way: it follows that one, with the standing as it is then. */
  #next: Promise<void> | null = null;
  #left = false;
  #announced: InstanceStanding | null = null;
  /** The leave under way or done (a second leave, as a shutdown's stop after its withdraw, sends nothing more). */
  #leaving: Promise<void> | null = null;

  constructor(pb: PocketBase, options: InstanceRegistryOptions) {
    this.#pb = pb;
    this.#options = options;
  }

  get owner(): string {
    return this.#options.owner;
  }

  /** Announces this instance now and every third of the TTL, until `leave()`. */
  start(readStanding: () => InstanceStanding): void {
    if (this.#timer) return;
    this.#readStanding = readStanding;
    this.#left = false;
    this.#leaving = null;
    void this.beat();
    this.#timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.#options.ttlMs / 3)));
    this.#timer.unref();
  }

  /**
   * Renews this instance's record with its standing as it is now (failures are logged).
   * One heartbeat at a time: one asked for meanwhile follows it, so news is never lost.
   */
  beat(): Promise<void> {
    if (!this.#readStanding || this.#left) return Promise.resolve();
    if (this.#beating) {
      this.#next ??= this.#beating.then(() => {
        this.#next = null;
        return this.beat();
      });
      return this.#next;
    }
    const standing = this.#readStanding();
    this.#beating = this.#send("beat", { ...standing, instanceId: this.#options.instanceId, url: this.#options.url ?? "", ttlMs: this.#options.ttlMs })
      .then(() => void (this.#announced = standing))
      .catch((error: unknown) => {
        this.#announced = null;
        log("warn", "Could not renew this instance's record", { code: errorCode(error) });
      })
      .finally(() => (this.#beating = null));
    return this.#beating;
  }

  /** The standing this instance's record holds: the last heartbeat's, null when that one failed. */
  get announced(): InstanceStanding | null {
    return this.#announced;
  }

  /** No more heartbeats; deletes this instance's record, so no other instance waits for it (failures are logged: it then expires). */
  leave(): Promise<void> {
    if (!this.#readStanding) return Promise.resolve(); // never announced
    this.#left = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#leaving ??= (async () => {
      await this.#beating; // a heartbeat landing after the delete would bring the record back
      await this.#send("leave", {}).catch((error: unknown) => log("warn", "Could not remove this instance's record", { code: errorCode(error) }));
    })();
    return this.#leaving;
  }

  /**
   * Every live instance that resumes sessions, this one included, oldest first, each
   * with the number of live leases it holds.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async live(): Promise<InstanceLoad[]> {
    let response: { instances: Omit<InstanceLoad, "self">[] };
    try {
      response = await this.#pb.send("/api/wavault/instances", { method: "GET", requestKey: null, signal: this.#signal() });
    } catch (error) {
      throw toStoreError(error, "read the instances' loads");
    }
    return response.instances.map((instance) => ({
      ...instance,
      // PocketBase's hooks of an earlier version do not say: an instance taking sessions takes new links.
      acceptingNewLinks: instance.acceptingNewLinks ?? instance.accepting,
      self: instance.owner === this.#options.owner,
    }));
  }

  /**
   * The other live instances that take sessions now.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async peers(): Promise<InstanceLoad[]> {
    return (await this.live()).filter((instance) => !instance.self && instance.accepting);
  }

  /**
   * The other live instances that take sessions now — with `newLink`, new links too —
   * and said where they answer (INSTANCE_URL, not this one's), the least loaded for its
   * cap first (then the one running fewer).
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async peersWithRoom({ newLink = false }: { newLink?: boolean } = {}): Promise<InstanceLoad[]> {
    return (await this.peers())
      // Not this instance's own address either: an earlier process here may still be listed.
      .filter((instance) => instance.url !== "" && instance.url !== this.#options.url)
      .filter((instance) => !newLink || instance.acceptingNewLinks)
      .sort((a, b) => loadShare(a) - loadShare(b) || a.clients - b.clients);
  }

  async #send(action: "beat" | "leave", body: Record<string, unknown>): Promise<unknown> {
    try {
      return await this.#pb.send(`/api/wavault/instances/${action}`, {
        method: "POST",
        body: { owner: this.#options.owner, ...body },
        requestKey: null,
        signal: this.#signal(),
      });
    } catch (error) {
      throw toStoreError(error, `${action} the instance record`);
    }
  }

  /** A request gives up when the next heartbeat is due (at least 1 s). */
  #signal(): AbortSignal {
    return AbortSignal.timeout(Math.max(1_000, Math.floor(this.#options.ttlMs / 3)));
  }
}

/** How full an instance is: its sessions against its cap. */
export function loadShare(instance: Pick<InstanceLoad, "clients" | "maxConnections">): number {
  return instance.clients / instance.maxConnections;
}
