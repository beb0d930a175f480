import { EventEmitter } from "node:events";
import path from "node:path";
import { waitUntil } from "@vercel/functions";
import QRCode from "qrcode";
import wwebjs from "whatsapp-web.js";

import { log } from "../../log";
import { ProfileChangedError } from "../archive-errors";
import type { DatabaseSessionStore, LoadedSession, SessionStatus } from "../database-session-store";
import { disposeArchive, profileFingerprint, type SessionArchive, type SessionArchiver } from "../session-archiver";
import { LeaseLostError, type Lease, type SessionLease } from "../session-lease";

const { Client, LocalAuth } = wwebjs;
type WaClient = InstanceType<typeof Client>;

export interface WhatsAppChannelOptions {
  userId: string;
  store: DatabaseSessionStore;
  archiver: SessionArchiver;
  /** SESSION_TMP_DIR: LocalAuth's dataPath; the profile is `<dir>/session-<userId>`. */
  sessionRoot: string;
  chromePath: string;
  /** WA_WEB_VERSION and WA_WEB_CACHE_DIR: whatsapp-web.js's own web-version cache. */
  webVersion?: string;
  webCacheDir?: string;
  /** Re-archive this often while ready, when the profile changed. */
  archiveIntervalMs: number;
  /** The lease service: the channel runs only while this instance holds the user's lease. */
  leases: SessionLease;
}

// Chromium flags that keep an idle client small and keep it off the network it does
// not need (updates, sync, metrics).
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-extensions",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--no-first-run",
  "--no-default-browser-check",
  "--mute-audio",
  "--js-flags=--max-old-space-size=256",
];

/**
 * One user's WhatsApp Web client: restores the stored session before the browser
 * starts, reports its status, archives the profile when it becomes ready, every
 * `archiveIntervalMs` while it changes, and on a graceful stop; deletes the stored
 * session on LOGOUT. Emits "status" (SessionStatus), "archived" (SessionArchive, once
 * saved) and "closed" (once, when its browser is gone for any reason).
 *
 * Consistency: the final archive is taken after the browser has stopped; archives
 * while it runs are retried when a kept file changed during the read.
 */
export class WhatsAppChannel extends EventEmitter {
  readonly userId: string;
  readonly #options: WhatsAppChannelOptions;
  #client: WaClient | null = null;
  #status: SessionStatus = "created";
  #qr: string | null = null;
  #qrDataUrl: string | null = null;
  #phoneNumber: string | null = null;
  #loggedOut = false;
  #closed = false;
  #archiveTimer: NodeJS.Timeout | null = null;
  #lastFingerprint: string | null = null;
  #lastArchivedAt: Date | null = null;
  #archiving: Promise<SessionArchive | null> | null = null;
  #writes: Promise<unknown> = Promise.resolve();
  #lease: Lease | null = null;
  #lastRestore: LoadedSession | null = null;
  #leaseTimer: NodeJS.Timeout | null = null;
  readonly startedAt = new Date();

  constructor(options: WhatsAppChannelOptions) {
    super();
    this.userId = options.userId;
    this.#options = options;
  }

  get status(): SessionStatus {
    return this.#status;
  }
  /** The current QR string and its PNG data URL, while the status is qr_ready. */
  get qr(): { value: string; dataUrl: string } | null {
    return this.#status === "qr_ready" && this.#qr && this.#qrDataUrl ? { value: this.#qr, dataUrl: this.#qrDataUrl } : null;
  }
  get phoneNumber(): string | null {
    return this.#phoneNumber;
  }
  get lastArchivedAt(): Date | null {
    return this.#lastArchivedAt;
  }
  /** The profile directory LocalAuth uses. */
  get sessionDir(): string {
    return path.join(this.#options.sessionRoot, `session-${this.userId}`);
  }
  /** The Chromium main process id, while the browser runs. */
  get browserPid(): number | null {
    return this.#client?.pupBrowser?.process()?.pid ?? null;
  }
  /** What the last start restored (tier, bytes, ms), or null when it restored nothing. */
  get lastRestore(): LoadedSession | null {
    return this.#lastRestore;
  }
  /** The underlying whatsapp-web.js client (for listeners the channel does not cover). */
  get client(): WaClient | null {
    return this.#client;
  }

  /**
   * Restores the stored session into the profile directory (a no-op when it already
   * holds the stored version). Returns what was restored, or null when there is none.
   * A failed restore is logged and the client starts without it (a QR scan).
   */
  async restoreSessionFromDatabase(): Promise<LoadedSession | null> {
    try {
      const loaded = await this.#options.store.loadSession(this.userId, this.sessionDir);
      this.#lastRestore = loaded;
      if (loaded) {
        log("info", "Session restored from database", { userId: this.userId, tier: loaded.tier, bytes: loaded.sizeBytes, ms: Math.round(loaded.ms) });
      }
      return loaded;
    } catch (error) {
      log("error", "Failed to restore session from database", { userId: this.userId, code: errorCode(error), error: String(error) });
      return null;
    }
  }

  /**
   * Claims the user's lease, restores, then starts the client; resolves once
   * whatsapp-web.js has initialized.
   * @throws SessionLeasedElsewhereError when another instance runs the session; whatever the start threw.
   */
  async start(): Promise<void> {
    if (this.#client) return;
    this.#lease = await this.#options.leases.claim(this.userId);
    this.#startLeaseHeartbeat();
    log("info", "Session lease claimed", { userId: this.userId, owner: this.#lease.owner, generation: this.#lease.generation });
    await this.#setStatus("initializing");
    await this.restoreSessionFromDatabase();
    const client = new Client({
      authStrategy: new LocalAuth({ clientId: this.userId, dataPath: this.#options.sessionRoot }),
      ...(this.#options.webVersion ? { webVersion: this.#options.webVersion } : {}),
      ...(this.#options.webCacheDir ? { webVersionCache: { type: "local" as const, path: this.#options.webCacheDir } } : {}),
      puppeteer: { executablePath: this.#options.chromePath, headless: true, args: CHROMIUM_ARGS },
    });
    this.#client = client;
    this.#wire(client);
    try {
      await client.initialize();
    } catch (error) {
      log("error", "WhatsApp client failed to start", { userId: this.userId, code: errorCode(error), error: String(error) });
      await this.#teardown();
      await this.#releaseLease();
      await this.#setStatus("failed");
      throw error;
    }
    // A browser that dies (crash, kill -9) is noticed here.
    client.pupBrowser?.once("disconnected", () => {
      if (this.#closed) return;
      log("warn", "WhatsApp browser disconnected", { userId: this.userId });
      void this.#closeUnexpectedly();
    });
  }

  /** Sends a text; the client must be ready. Returns the message id. */
  async sendText(chatId: string, text: string): Promise<string> {
    if (!this.#client || this.#status !== "ready") throw new Error("not ready");
    const message = await this.#client.sendMessage(chatId, text);
    return message.id._serialized;
  }

  /**
   * Archives the profile and saves it, unless it is unchanged since the last archive.
   * Returns the archive saved, or null (unchanged, logged out, or failed — logged).
   */
  archiveSessionToDatabase(reason: string): Promise<SessionArchive | null> {
    this.#archiving ??= this.#archive(reason).finally(() => (this.#archiving = null));
    return this.#archiving;
  }

  /**
   * Stops the client gracefully: browser first (a consistent profile), then a final
   * archive, then the lease is released for the next instance.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    const wasReady = this.#status === "ready";
    await this.#teardown();
    if (wasReady && !this.#loggedOut) await this.archiveSessionToDatabase("stop");
    await this.#releaseLease();
    await this.#setStatus("disconnected");
  }

  /** Logs out of WhatsApp and deletes the stored session (never uploads an empty profile). */
  async logout(): Promise<void> {
    this.#loggedOut = true;
    this.#stopArchiveTimer();
    try {
      await this.#client?.logout();
    } catch (error) {
      log("warn", "WhatsApp logout did not complete cleanly", { userId: this.userId, error: String(error) });
    }
    await this.#write(() => this.#options.store.deleteSession(this.userId));
    log("info", "Session logged out and deleted", { userId: this.userId });
    await this.#teardown();
    await this.#setStatus("disconnected");
  }

  #wire(client: WaClient): void {
    client.on("qr", (qr: string) => {
      if (this.#loggedOut) return; // the library asks for a new link after a LOGOUT
      this.#qr = qr;
      void QRCode.toDataURL(qr, { margin: 1, width: 264 }).then((dataUrl) => {
        if (this.#qr !== qr) return;
        this.#qrDataUrl = dataUrl;
        void this.#setStatus("qr_ready");
      });
    });
    client.on("authenticated", () => void this.#setStatus("authenticating"));
    client.on("ready", () => {
      this.#qr = this.#qrDataUrl = null;
      this.#phoneNumber = client.info?.wid?.user ?? null;
      void this.#setStatus("ready");
      // On Vercel, keep the function alive until the first archive is saved; elsewhere a no-op.
      waitUntil(this.archiveSessionToDatabase("ready"));
      this.#startArchiveTimer();
    });
    client.on("auth_failure", () => void this.#setStatus("failed"));
    client.on("disconnected", (reason: string) => {
      if (reason === "LOGOUT") void this.#onPhoneLogout();
      else if (!this.#closed) void this.#closeUnexpectedly();
    });
  }

  async #onPhoneLogout(): Promise<void> {
    if (this.#loggedOut) return;
    this.#loggedOut = true;
    this.#stopArchiveTimer();
    log("info", "WhatsApp logged out from the phone", { userId: this.userId });
    await this.#write(() => this.#options.store.deleteSession(this.userId)).catch((error) =>
      log("error", "Failed to delete the logged-out session", { userId: this.userId, code: errorCode(error) }),
    );
    // The library reloads the page and re-injects after a LOGOUT, without catching
    // errors; closing the browser before that is done rejects unhandled inside it. Its
    // second QR (the first rotation) comes after; or give it 10 s.
    const client = this.#client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      let qrs = 0;
      client?.on("qr", () => {
        if (++qrs < 2) return;
        clearTimeout(timer);
        resolve();
      });
    });
    await this.#teardown();
    await this.#setStatus("disconnected");
  }

  async #archive(reason: string): Promise<SessionArchive | null> {
    if (this.#loggedOut) return null;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let archive: SessionArchive | null = null;
      try {
        if ((await profileFingerprint(this.sessionDir)) === this.#lastFingerprint) return null; // unchanged
        archive = await this.#options.archiver.archiveSession(this.sessionDir);
        if (!this.#lease) return null; // taken over: never upload without the lease
        const [saving, lease] = [archive, this.#lease];
        await this.#write(() => this.#options.store.saveSession(this.userId, saving, this.#phoneNumber ?? undefined, { reason }, lease));
        await this.#options.store.markLocalVersion(this.sessionDir, archive.sha256);
        this.#lastFingerprint = archive.fingerprint;
        this.#lastArchivedAt = new Date();
        log("info", "Session archived to database", {
          userId: this.userId,
          reason,
          bytes: archive.sizeBytes,
          rawBytes: archive.rawBytes,
          ms: Math.round(performance.now() - started),
        });
        this.emit("archived", archive);
        return archive;
      } catch (error) {
        if (error instanceof ProfileChangedError && attempt < 3) continue; // the browser was writing
        if (error instanceof LeaseLostError) {
          void this.#onLeaseLost();
          return null;
        }
        log("error", "Failed to archive session", { userId: this.userId, reason, code: errorCode(error), error: String(error) });
        return null;
      } finally {
        if (archive) await disposeArchive(archive);
      }
    }
  }

  #startLeaseHeartbeat(): void {
    const every = Math.max(100, Math.floor(this.#options.leases.ttlMs / 3));
    this.#leaseTimer = setInterval(() => {
      if (!this.#lease) return;
      const lease = this.#lease;
      this.#write(() => this.#options.leases.renew(lease)).then(
        (lease) => (this.#lease = lease),
        (error: unknown) => {
          if (error instanceof LeaseLostError) void this.#onLeaseLost();
          else log("warn", "Failed to renew the session lease", { userId: this.userId, code: errorCode(error) });
        },
      );
    }, every);
    this.#leaseTimer.unref();
  }

  /** The browser or WhatsApp went away: free everything and the lease; the last archive stays. */
  async #closeUnexpectedly(): Promise<void> {
    await this.#teardown();
    await this.#releaseLease();
    await this.#setStatus("disconnected");
  }

  /** Another instance took the session over: stop at once, upload nothing. */
  async #onLeaseLost(): Promise<void> {
    if (!this.#lease) return;
    log("warn", "Session lease lost to another instance", { userId: this.userId, generation: this.#lease.generation });
    this.#lease = null;
    await this.#teardown();
    await this.#setStatus("disconnected");
  }

  async #releaseLease(): Promise<void> {
    const lease = this.#lease;
    this.#lease = null;
    if (!lease) return;
    await this.#write(() => this.#options.leases.release(lease)).catch((error: unknown) =>
      log("warn", "Failed to release the session lease", { userId: this.userId, code: errorCode(error) }),
    );
  }

  #startArchiveTimer(): void {
    this.#stopArchiveTimer();
    this.#archiveTimer = setInterval(() => void this.archiveSessionToDatabase("interval"), this.#options.archiveIntervalMs);
    this.#archiveTimer.unref();
  }

  #stopArchiveTimer(): void {
    if (this.#archiveTimer) clearInterval(this.#archiveTimer);
    this.#archiveTimer = null;
  }

  /** Closes the browser and frees everything; emits "closed" once. */
  async #teardown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopArchiveTimer();
    if (this.#leaseTimer) clearInterval(this.#leaseTimer);
    await this.#archiving?.catch(() => null);
    const client = this.#client;
    this.#client = null;
    try {
      await client?.destroy();
    } catch {
      // A browser that is already gone cannot be closed again.
      client?.pupBrowser?.process()?.kill("SIGKILL");
    }
    this.emit("closed");
  }

  /** Resolves once every status change so far is recorded in PocketBase. */
  async statusRecorded(): Promise<void> {
    await this.#writes.catch(() => {});
  }

  /**
   * Runs the channel's writes to its session record one at a time, in order. PocketBase
   * saves a whole record at once, so two writes in flight (a status and an archive
   * upload, say) could each put back the other's fields as they were.
   */
  #write<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#writes.catch(() => {}).then(work);
    this.#writes = next;
    return next;
  }

  #setStatus(status: SessionStatus): Promise<void> {
    if (this.#status === status) return this.statusRecorded();
    this.#status = status;
    this.emit("status", status);
    log("info", "WhatsApp status changed", { userId: this.userId, status });
    const phoneNumber = this.#phoneNumber;
    return this.#write(() => this.#options.store.recordStatus(this.userId, status, phoneNumber)).catch((error: unknown) => {
      log("warn", "Failed to record the session status", { userId: this.userId, status, code: errorCode(error) });
    });
  }
}

function errorCode(error: unknown): string {
  return (error as { code?: unknown })?.code && typeof (error as { code?: unknown }).code === "string"
    ? ((error as { code: string }).code)
    : "unknown";
}
