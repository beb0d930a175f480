import type PocketBase from "pocketbase";

import { log } from "../log";
import { SESSIONS_COLLECTION } from "./database-session-store";
import { errorCode, isNotFound, toStoreError } from "./session-store-errors";

export const INSTANCES_COLLECTION = "whatsapp_instances";

/** What an instance tells the others about itself on each heartbeat. */
export interface InstanceStanding {
  /** It takes more sessions now: room under its cap and memory budget, and its starts succeed. */
  accepting: boolean;
  maxConnections: number;
}

/** A live instance as its record says, and how many sessions it runs (its live leases). */
export interface InstanceLoad {
  owner: string;
  instanceId: string;
  url: string;
  accepting: boolean;
  clients: number;
  maxConnections: number;
  /** When its record was last renewed. */
  seenAt: Date;
}

export interface InstanceRegistryOptions {
  /** This process's lease owner (SessionLease.owner): its record's key, and how its leases are counted. */
  owner: string;
  instanceId: string;
  /** INSTANCE_URL, for operators reading the records. */
  url?: string;
  /** A record not renewed for this long is no longer live (the lease TTL: an instance that lost touch has also let its sessions go). */
  ttlMs: number;
}

/** Records expired this long ago (instances that died without deleting theirs) are deleted. */
const FORGET_AFTER_MS = 60 * 60_000;

/**
 * The instances that resume sessions (PocketBase collection `whatsapp_instances`), so
 * each resumer can leave waiting sessions to a live instance that runs fewer. Each
 * instance renews its own record every third of `ttlMs` while it resumes, and deletes it
 * when it stops; one that dies drops out once its record expires.
 */
export class InstanceRegistry {
  readonly #pb: PocketBase;
  readonly #options: InstanceRegistryOptions;
  #readStanding: (() => InstanceStanding) | null = null;
  #recordId: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  #left = false;
  #forgottenAt = 0;

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
    void this.beat();
    this.#timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.#options.ttlMs / 3)));
    this.#timer.unref();
  }

  /** Renews this instance's record now, with its standing as it is now (one heartbeat at a time; failures are logged). */
  beat(): Promise<void> {
    if (!this.#readStanding || this.#left) return Promise.resolve();
    this.#beating ??= this.#write(this.#readStanding())
      .then(() => this.#forgetDeadOnes().catch(() => undefined)) // someone else's leftovers: the next hour's try
      .catch((error: unknown) => log("warn", "Could not renew this instance's record", { code: errorCode(error) }))
      .finally(() => (this.#beating = null));
    return this.#beating;
  }

  /** No more heartbeats; deletes this instance's record, so no other instance waits for it (failures are logged: it then expires). */
  async leave(): Promise<void> {
    this.#left = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating; // a heartbeat landing after the delete would bring the record back
    const id = this.#recordId;
    this.#recordId = null;
    if (!id) return;
    try {
      await this.#pb.collection(INSTANCES_COLLECTION).delete(id, { requestKey: null, signal: this.#signal() });
    } catch (error) {
      if (!isNotFound(error)) log("warn", "Could not remove this instance's record", { code: errorCode(toStoreError(error, "remove the instance record")) });
    }
  }

  /**
   * Every live instance that resumes sessions, this one included, oldest first.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  live(): Promise<InstanceLoad[]> {
    return this.#read("expires > {:now}");
  }

  /**
   * The other live instances that take sessions now.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  peers(): Promise<InstanceLoad[]> {
    return this.#read("expires > {:now} && accepting = true && owner != {:owner}");
  }

  /** The instance records `filter` selects, each with the number of live leases it holds. */
  async #read(filter: string): Promise<InstanceLoad[]> {
    const pb = this.#pb;
    const now = new Date();
    try {
      const records = await pb.collection(INSTANCES_COLLECTION).getFullList({
        filter: pb.filter(filter, { owner: this.#options.owner, now }),
        sort: "created",
        fields: "owner,instance_id,url,accepting,max_connections,updated",
        requestKey: null,
      });
      return await Promise.all(
        records.map(async (record) => {
          const owner = String(record.owner);
          const leases = await pb.collection(SESSIONS_COLLECTION).getList(1, 1, {
            filter: pb.filter("lease_owner = {:owner} && lease_expires > {:now}", { owner, now }),
            fields: "id",
            requestKey: null,
          });
          return {
            owner,
            instanceId: String(record.instance_id),
            url: String(record.url),
            accepting: Boolean(record.accepting),
            clients: leases.totalItems,
            maxConnections: Number(record.max_connections),
            seenAt: new Date(String(record.updated)),
          };
        }),
      );
    } catch (error) {
      throw toStoreError(error, "read the instances' loads");
    }
  }

  async #write(standing: InstanceStanding): Promise<void> {
    const { owner, instanceId, url = "", ttlMs } = this.#options;
    const data = {
      owner,
      instance_id: instanceId,
      url,
      accepting: standing.accepting,
      max_connections: standing.maxConnections,
      expires: new Date(Date.now() + ttlMs).toISOString(),
    };
    const records = this.#pb.collection(INSTANCES_COLLECTION);
    const options = { requestKey: null, signal: this.#signal() };
    try {
      if (this.#recordId) {
        try {
          await records.update(this.#recordId, data, options);
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error; // deleted meanwhile (expired, forgotten by another instance): create it again
        }
      }
      const existing = await records.getList(1, 1, { ...options, filter: this.#pb.filter("owner = {:owner}", { owner }), fields: "id" });
      const id = existing.items[0]?.id;
      this.#recordId = id ? (await records.update(id, data, options)).id : (await records.create(data, options)).id;
    } catch (error) {
      throw toStoreError(error, "renew the instance record");
    }
  }

  /** Deletes records of instances that died without deleting theirs, at most once an hour. */
  async #forgetDeadOnes(): Promise<void> {
    if (Date.now() - this.#forgottenAt < FORGET_AFTER_MS) return;
    this.#forgottenAt = Date.now();
    const records = this.#pb.collection(INSTANCES_COLLECTION);
    const cutoff = new Date(Date.now() - FORGET_AFTER_MS);
    const dead = await records.getFullList({ filter: this.#pb.filter("expires < {:cutoff}", { cutoff }), fields: "id", requestKey: null });
    for (const { id } of dead) await records.delete(id, { requestKey: null }).catch(() => undefined);
  }

  /** A request gives up when the next heartbeat is due. */
  #signal(): AbortSignal {
    return AbortSignal.timeout(Math.max(1_000, Math.floor(this.#options.ttlMs / 3)));
  }
}
