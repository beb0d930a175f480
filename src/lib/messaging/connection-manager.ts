import { log } from "../log";
import { processTreesMemoryBytes } from "../system/process-tree-memory";
import { MIN_FREE_INODES, readDiskRoom } from "./disk-room";
import { SessionLeasedElsewhereError, SessionNotWantedError } from "./session-lease";
import { errorCode } from "./session-store-errors";
import type { WhatsAppChannel } from "./channels/whatsapp-channel";

export type ConnectionType = "whatsapp";

export type RoomLimit = "connections" | "memory" | "disk" | "qr";

const LIMIT_TEXT: Record<RoomLimit, (max: number) => string> = {
  connections: (max) => `Maximum WhatsApp connections reached (${max})`,
  memory: (max) => `The clients' memory reached WHATSAPP_MEMORY_BUDGET_MB (${max} MB)`,
  disk: (max) => `SESSION_TMP_DIR's disk has less than SESSION_TMP_MIN_FREE_MB (${max} MB) or ${MIN_FREE_INODES} inodes free`,
  qr: (max) => `Maximum clients waiting for a QR scan reached (MAX_WHATSAPP_QR_WAITING: ${max})`,
};

/**
 * No room for another client: the connection cap, the memory budget or the disk's free
 * space is reached — or, for a client that will need a QR scan, the cap on those.
 */
export class ConnectionLimitError extends Error {
  readonly code = "connection_limit";
  constructor(readonly limit: RoomLimit, readonly max: number) {
    super(LIMIT_TEXT[limit](max));
    this.name = "ConnectionLimitError";
  }
}

/** The refusals that say only "no room for another client here": another instance may take the connect. */
export const NO_ROOM_CODES: ReadonlySet<string> = new Set(["connection_limit", "shutting_down", "browser_not_found"]);

/** The instance is shutting down and takes no new clients. */
export class ShuttingDownError extends Error {
  readonly code = "shutting_down";
  constructor() {
    super("This instance is shutting down.");
    this.name = "ShuttingDownError";
  }
}

export interface ConnectionManagerOptions {
  maxConnections: number;
  /** Refuse new clients while the measured memory of all clients is at or above this. */
  memoryBudgetMb?: number;
  /** Refuse new clients while the disk of `dir` (the profiles') has less room than this (see readDiskRoom). */
  disk?: { dir: string; minFreeMb: number };
  /**
   * At most this many clients wait for a QR scan at once (default: no cap of their own).
   * Anyone who can sign up can start one, and one never scanned holds its room until its
   * ready deadline: the cap keeps the rest of `maxConnections` for linked sessions.
   */
  maxWaitingForQr?: number;
  /** Builds (does not start) the channel for a user. */
  createChannel: (userId: string) => WhatsAppChannel;
  /** The owner this process's leases carry (SessionLease.owner): a lease still held under it is no other instance's. */
  leaseOwner?: string;
  /**
   * A ready client stopped because its lease could not be renewed (PocketBase out of
   * reach) is started again every `delayMs` for up to `windowMs` (default 10 s, 10 min).
   */
  reconnect?: { delayMs: number; windowMs: number };
}

export interface ConnectionStats {
  activeConnections: number;
  maxConnections: number;
  totalCreated: number;
  totalFailed: number;
  averageConnectionAgeMinutes: number;
  /** Clients waiting for a QR scan: a new link, or a stored session WhatsApp no longer knows. */
  waitingForQr: number;
  /** Measured: every client's Chromium process tree from /proc (PSS: shared pages counted once). */
  memoryUsageMB: number;
  /** The seed's estimate, for comparison: 250 MB a client. */
  estimatedMemoryMB: number;
}

const ESTIMATED_MB_PER_CLIENT = 250;
const RECONNECT = { delayMs: 10_000, windowMs: 10 * 60_000 };

/**
 * The process's WhatsApp clients: at most `maxConnections` (and, if set, within the
 * memory budget and while the profiles' disk has room), one per user; concurrent
 * connects for one user share one client.
 */
export class ConnectionManager {
  readonly #options: ConnectionManagerOptions;
  readonly #channels = new Map<string, WhatsAppChannel>();
  readonly #connecting = new Map<string, Promise<WhatsAppChannel>>();
  readonly #withoutClient = new Map<string, Promise<void>>();
  /** Users whose client is to be started again after it lost touch with PocketBase (see reconnect). */
  readonly #reconnecting = new Map<string, object>();
  /** Clients started for users with no stored session: they wait for a QR scan until linked. */
  readonly #newLinks = new WeakSet<WhatsAppChannel>();
  readonly #roomListeners = new Set<() => void>();
  #totalCreated = 0;
  #shuttingDown = false;
  #totalFailed = 0;

  constructor(options: ConnectionManagerOptions) {
    this.#options = options;
  }

  /** Whether a new client may start for `userId` (true when it already has one). */
  canCreateConnection(userId: string, _type: ConnectionType = "whatsapp"): boolean {
    if (this.#channels.has(userId) || this.#connecting.has(userId)) return true;
    return this.#limitReached() === null;
  }

  /** Whether a new client may start now: not shutting down, and room under the cap, the memory budget and on the disk. */
  hasRoom(): boolean {
    return !this.#shuttingDown && this.#limitReached() === null;
  }

  /** Whether one more client may wait for a QR scan (under MAX_WHATSAPP_QR_WAITING): with hasRoom(), room for a new link. */
  hasRoomToWaitForQr(): boolean {
    return this.#qrLimitReached() === null;
  }

  get maxConnections(): number {
    return this.#options.maxConnections;
  }

  /**
   * Calls `listener` whenever the room for clients may have changed: a client has come,
   * changed its status (a phone scanned) or gone. Returns the unsubscribe.
   */
  onRoomChange(listener: () => void): () => void {
    this.#roomListeners.add(listener);
    return () => this.#roomListeners.delete(listener);
  }

  registerConnection(userId: string, _type: ConnectionType, channel: WhatsAppChannel): void {
    this.#channels.set(userId, channel);
    this.#totalCreated += 1;
    this.#roomChanged();
    channel.on("status", () => this.#roomChanged());
    channel.once("closed", () => {
      this.unregisterConnection(userId, "whatsapp", channel);
      this.#roomChanged();
    });
    channel.once("lease_lost", (reason: string, wasReady: boolean) => {
      if (reason === "not_renewed" && wasReady) void this.#reconnect(userId, channel);
    });
  }

  unregisterConnection(userId: string, _type: ConnectionType = "whatsapp", channel?: WhatsAppChannel): void {
    if (!channel || this.#channels.get(userId) === channel) this.#channels.delete(userId);
  }

  /** Every client of this instance. */
  list(): WhatsAppChannel[] {
    return [...this.#channels.values()];
  }

  /** The running client of a user, if any. */
  get(userId: string): WhatsAppChannel | undefined {
    return this.#channels.get(userId);
  }

  /**
   * Starts the user's client, or returns the one running or starting. `resume`: a start
   * nobody asked for (see SessionResumer), made only if the session is still marked to
   * keep running and no lease on it is live. `newLink`: the user has no stored session,
   * so a client started for them waits for a QR scan (see maxWaitingForQr). A client it
   * creates is registered before it returns (`get()` sees it at once).
   * @throws ConnectionLimitError when there is no room; SessionNotWantedError (resume);
   *   whatever the start threw.
   */
  connect(userId: string, options: { resume?: boolean; newLink?: boolean } = {}): Promise<WhatsAppChannel> {
    if (this.#shuttingDown) return Promise.reject(new ShuttingDownError());
    // Work on the user's session without a client (a logout) finishes first.
    const busy = this.#withoutClient.get(userId);
    if (busy) return busy.then(() => this.connect(userId, options));
    const running = this.#channels.get(userId);
    // A client on its way out is never handed back: a new one starts once it has gone,
    // and its start has settled (one stopped while starting ends after "closed": its
    // failure is its own, not the new connect's).
    if (running?.stopping) {
      const settled = this.#connecting.get(userId)?.catch(() => {});
      return Promise.all([running.whenClosed(), settled]).then(() => this.connect(userId, options));
    }
    // A resume only ever starts a client of its own: one running or starting here is
    // someone else's (a user's connect, which may yet wait for a QR).
    if (options.resume && (running || this.#connecting.has(userId))) return Promise.reject(new SessionNotWantedError(userId));
    // A user's connect that joins a resumed client makes it the user's own (see joinedByUser).
    if (!options.resume) running?.joinedByUser();
    // A client still starting is shared only once its start has succeeded. A resume's
    // start that turns out not to be wanted does not end a user's connect: it starts anew.
    const pending = this.#connecting.get(userId);
    if (pending) {
      return pending.catch((error: unknown) => {
        if (!options.resume && error instanceof SessionNotWantedError) return this.connect(userId, options);
        throw error;
      });
    }
    if (running) return Promise.resolve(running);

    const limit = this.#limitReached() ?? (options.newLink ? this.#qrLimitReached() : null);
    if (limit) return Promise.reject(new ConnectionLimitError(limit.limit, limit.max));
    let channel: WhatsAppChannel;
    try {
      channel = this.#options.createChannel(userId);
    } catch (error) {
      return Promise.reject(error); // no browser to start one with, say
    }
    if (options.newLink) this.#newLinks.add(channel);
    this.registerConnection(userId, "whatsapp", channel);
    const starting = channel
      .start(options)
      .then(() => channel)
      .catch((error: unknown) => {
        this.#totalFailed += 1;
        this.unregisterConnection(userId, "whatsapp", channel);
        throw error;
      })
      .finally(() => this.#connecting.delete(userId));
    this.#connecting.set(userId, starting);
    return starting;
  }

  /**
   * Runs `work` on a user's session while no client runs it here (a logout without a
   * client, say); connects for that user wait until it is done. Work already under way
   * for the user finishes first. Returns `{ ran: false }`, without running `work`, when
   * the user has a client here: use the client then. A client to be started again after
   * losing touch with PocketBase (see reconnect) is called off — the work (a logout, a
   * disconnect) decides what becomes of the session — unless `housekeeping`: then that
   * counts as a client, and the work does not run.
   */
  async whileNoClient<T>(
    userId: string,
    work: () => Promise<T>,
    { housekeeping = false }: { housekeeping?: boolean } = {},
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    if (housekeeping && this.#reconnecting.has(userId)) return { ran: false };
    this.#reconnecting.delete(userId);
    for (let busy = this.#withoutClient.get(userId); busy; busy = this.#withoutClient.get(userId)) await busy;
    if (this.#channels.has(userId) || (housekeeping && this.#reconnecting.has(userId))) return { ran: false };
    const running = work();
    this.#withoutClient.set(
      userId,
      running.then(
        () => undefined,
        () => undefined,
      ),
    );
    try {
      return { ran: true, value: await running };
    } finally {
      this.#withoutClient.delete(userId);
    }
  }

  /**
   * Stops a user's client gracefully (a final archive) because the user, or an
   * operator's rule, wants it stopped: no instance starts it again by itself. False
   * when none ran here.
   */
  async disconnect(userId: string): Promise<boolean> {
    this.#reconnecting.delete(userId); // the user wants it stopped
    const channel = this.#channels.get(userId);
    if (!channel) return false;
    await channel.stop({ byUser: true });
    this.unregisterConnection(userId, "whatsapp", channel);
    return true;
  }

  /** Stops every client gracefully (deploys, SIGTERM); no new connects from then on. */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    await Promise.allSettled([...this.#channels.values()].map((channel) => channel.stop()));
    this.#channels.clear();
  }

  /** Stops clients that are not ready and older than `idleMs`; returns their user ids. */
  async cleanupStaleConnections(idleMs: number): Promise<string[]> {
    const now = Date.now();
    const stale = [...this.#channels.entries()].filter(
      // One already on its way out (its own ready deadline, say) ends as it is; one whose
      // phone has scanned is syncing a new link, which a stop now would lose.
      ([, channel]) => channel.status !== "ready" && !channel.stopping && !channel.syncingNewLink && now - channel.startedAt.getTime() > idleMs,
    );
    await Promise.allSettled(stale.map(([userId]) => this.disconnect(userId)));
    return stale.map(([userId]) => userId);
  }

  getStats(): ConnectionStats {
    const channels = [...this.#channels.values()];
    const now = Date.now();
    const ages = channels.map((channel) => (now - channel.startedAt.getTime()) / 60_000);
    return {
      activeConnections: channels.length,
      maxConnections: this.#options.maxConnections,
      totalCreated: this.#totalCreated,
      totalFailed: this.#totalFailed,
      waitingForQr: this.#waitingForQr(),
      averageConnectionAgeMinutes: ages.length ? Number((ages.reduce((a, b) => a + b, 0) / ages.length).toFixed(1)) : 0,
      memoryUsageMB: Math.round(this.#measuredBytes() / 1024 / 1024),
      estimatedMemoryMB: channels.length * ESTIMATED_MB_PER_CLIENT,
    };
  }

  /** The seed's status lines. */
  printStatus(): void {
    const stats = this.getStats();
    console.log(`Active: ${stats.activeConnections}/${stats.maxConnections}`);
    console.log(`Memory: ${stats.memoryUsageMB} MB`);
    console.log(`Created: ${stats.totalCreated}, failed: ${stats.totalFailed}, average age: ${stats.averageConnectionAgeMinutes} min`);
  }

  /**
   * Starts a user's client again once the one that lost touch with PocketBase has gone,
   * until it runs (from the profile on disk or the stored archive: no QR), another
   * instance holds the session, the user disconnects or logs out, or the window ends.
   */
  async #reconnect(userId: string, lost: WhatsAppChannel): Promise<void> {
    const { delayMs, windowMs } = this.#options.reconnect ?? RECONNECT;
    const until = Date.now() + windowMs;
    const mine = {};
    this.#reconnecting.set(userId, mine);
    await lost.whenClosed();
    let waitMs = delayMs;
    try {
      while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
        waitMs = delayMs;
        if (this.#reconnecting.get(userId) !== mine || this.#shuttingDown || this.#channels.has(userId)) return;
        try {
          // As a resume: not if the user stopped it meanwhile (through another instance).
          await this.connect(userId, { resume: true });
          log("info", "Session started again after losing touch with PocketBase", { userId });
          return;
        } catch (error) {
          if (errorCode(error) === "not_wanted") return; // the user stopped it, or logged out
          if (error instanceof SessionLeasedElsewhereError) {
            if (error.owner !== this.#options.leaseOwner) return; // another instance runs it now
            // A lease this process still holds (its release did not get through): try once it has lapsed.
            waitMs = Math.max(delayMs, error.expiresAt.getTime() - Date.now() + 100);
            continue;
          }
          log("warn", "Could not start the session again yet", { userId, code: errorCode(error) });
        }
      }
    } finally {
      if (this.#reconnecting.get(userId) === mine) this.#reconnecting.delete(userId);
    }
  }

  #roomChanged(): void {
    for (const listener of this.#roomListeners) {
      try {
        listener();
      } catch (error) {
        log("warn", "A listener to the room for clients failed", { error: String(error) });
      }
    }
  }

  #measuredBytes(): number {
    const pids = [...this.#channels.values()].map((channel) => channel.browserPid).filter((pid) => pid !== null);
    return processTreesMemoryBytes(pids);
  }

  /**
   * Whether `channel` waits for a QR scan: one started for a new link until the phone
   * has scanned, or any showing a QR (a stored session WhatsApp logged out). Counted from
   * its registration, so two connects at once cannot both take the last place.
   */
  #waitsForQr(channel: WhatsAppChannel): boolean {
    if (channel.stopping || channel.status === "authenticating" || channel.status === "ready") return false;
    return channel.status === "qr_ready" || this.#newLinks.has(channel);
  }

  #waitingForQr(): number {
    let waiting = 0;
    for (const channel of this.#channels.values()) if (this.#waitsForQr(channel)) waiting += 1;
    return waiting;
  }

  #qrLimitReached(): { limit: RoomLimit; max: number } | null {
    const max = this.#options.maxWaitingForQr;
    return max !== undefined && this.#waitingForQr() >= max ? { limit: "qr", max } : null;
  }

  #limitReached(): { limit: RoomLimit; max: number } | null {
    if (this.#channels.size >= this.#options.maxConnections) return { limit: "connections", max: this.#options.maxConnections };
    const budget = this.#options.memoryBudgetMb;
    if (budget && this.#measuredBytes() / 1024 / 1024 >= budget) return { limit: "memory", max: budget };
    const disk = this.#options.disk;
    if (disk?.minFreeMb && readDiskRoom(disk.dir, disk.minFreeMb)?.enough === false) return { limit: "disk", max: disk.minFreeMb };
    return null;
  }
}
