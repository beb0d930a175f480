import { EventEmitter } from "node:events";

import { log } from "../../log";
import { settleWithin } from "../../settle-within";
import type { LoadedSession, SessionStatus } from "../database-session-store";
import { LeaseKeeper } from "../lease-keeper";
import type { SessionArchive } from "../session-archiver";
import type { SessionEventType } from "../session-event-log";
import { SessionLeasedElsewhereError, SessionNotWantedError } from "../session-lease";
import { errorCode } from "../session-store-errors";
import { ChannelStoppedError, NotReadyError, SendFailedError } from "./channel-errors";
import { guardReinjection } from "./guard-reinjection";
import { deleteLoggedOutProfile, deleteLoggedOutSession } from "./logged-out-session";
import { PendingQr } from "./pending-qr";
import { profileDirOf } from "./profile-dir";
import { ReadyDeadline } from "./ready-deadline";
import { RecordWriteQueue } from "./record-write-queue";
import { SEND_TIMEOUT_MS, sendWithin } from "./send-within";
import { SessionRestorer } from "./session-restorer";
import { SessionSaver, type SaveFailure } from "./session-saver";
import { writeStatus } from "./status-writer";
import { createWaClient, destroyLaunched, destroyQuietly, linkInProgress, type WaClient } from "./wa-client";
import type { WhatsAppChannelOptions } from "./whatsapp-channel-options";

/** A browser whose lease is lost gets this long to close before it is killed (the lease deadline leaves a sixth of the TTL). */
const LOST_LEASE_CLOSE_MS = 2_000;
/** WhatsApp Web gets this long to log out; the stored session is deleted either way. */
const LOGOUT_MS = 30_000;

/**
 * One user's WhatsApp Web client: claims the user's lease, restores the stored session
 * before the browser starts, reports its status, archives the profile when it becomes
 * ready, every `archiveIntervalMs` while it changes, and on a graceful stop; deletes the
 * stored session on LOGOUT. Emits "status" (SessionStatus), "archived" (SessionArchive)
 * and, last of all on every way it ends, "closed" (browser gone, lease released).
 *
 * Consistency: the final archive is taken after the browser has stopped; archives while
 * it runs are retried when a kept file changed during the read (SessionSaver).
 */
export class WhatsAppChannel extends EventEmitter {
  readonly userId: string;
  readonly startedAt = new Date();
  readonly #options: WhatsAppChannelOptions;
  readonly #lease: LeaseKeeper;
  readonly #saver: SessionSaver;
  readonly #restorer: SessionRestorer;
  #client: WaClient | null = null;
  /** Settles once the last browser closed (see #closeBrowser). */
  #browserClosed: Promise<void> = Promise.resolve();
  /** The client's initialize(), once called: it launches the browser (see destroyLaunched). */
  #initializing: Promise<unknown> = Promise.resolve();
  #initialized = false;
  #status: SessionStatus = "created";
  readonly #qr = new PendingQr();
  #phoneNumber: string | null = null;
  readonly #writes = new RecordWriteQueue();
  #starting: Promise<void> | null = null;
  #stopRequested = false;
  /** The user stopped it: the last status write says the session is no longer to run. */
  #stoppedByUser = false;
  #loggedOut = false;
  #profileDeleted = false;
  #finishing: Promise<void> | null = null;
  #closed = false;
  /** This start is a resume (the session starting by itself), not a user's connect. */
  #resumed = false;
  #generation: number | null = null;
  readonly #readyDeadline: ReadyDeadline;

  constructor(options: WhatsAppChannelOptions) {
    super();
    this.userId = options.userId;
    this.#options = options;
    this.#lease = new LeaseKeeper(options.leases, options.userId, (work) => this.#writes.run(work), (reason) => {
      this.#event("lease_lost", { reason });
      // "Was ready" asks for a restart once PocketBase answers: not for a client a stop or
      // a logout was already ending.
      this.emit("lease_lost", reason, this.#status === "ready" && !this.#stopRequested && !this.#loggedOut);
      // Another instance may run the session now or soon: the browser goes at once,
      // whatever a stop already under way is still waiting for. A logout under way ends
      // the channel itself, once the stored session is deleted: the lease is released
      // after that, never before.
      void this.#closeBrowser(true);
      if (!this.#loggedOut) void this.#finish("disconnected", { leaseLost: true });
    });
    this.#readyDeadline = new ReadyDeadline(options.readyWithinMs, {
      over: () => this.#status === "ready" || this.stopping,
      linking: () => linkInProgress(this.#client),
      giveUp: (limitMs) => this.#giveUpNotReady(limitMs),
    });
    this.#restorer = new SessionRestorer(options.userId, this.sessionDir, options.store, (event, data) => this.#event(event, data));
    this.#saver = new SessionSaver({
      userId: options.userId,
      sessionDir: this.sessionDir,
      store: options.store,
      archiver: options.archiver,
      lease: this.#lease,
      write: (work) => this.#writes.run(work),
      loggedOut: () => this.#loggedOut,
      phoneNumber: () => this.#phoneNumber,
      onSaved: (archive, reason, ms) => {
        this.#event("archive_saved", { bytes: archive.sizeBytes, rawBytes: archive.rawBytes, ms, reason });
        this.emit("archived", archive);
      },
      onFailing: ({ code }, reason) => this.#event("archive_failed", { code, reason }),
    });
  }

  get status(): SessionStatus {
    return this.#status;
  }
  /** The current QR string and its PNG data URL, while the status is qr_ready. */
  get qr(): { value: string; dataUrl: string } | null {
    return this.#status === "qr_ready" ? this.#qr.current : null;
  }
  get phoneNumber(): string | null {
    return this.#phoneNumber;
  }
  get lastArchivedAt(): Date | null {
    return this.#saver.lastSavedAt;
  }
  /** Why the latest archive could not be saved, while the stored session lags behind the profile; else null. */
  get archiveFailure(): SaveFailure | null {
    return this.#saver.failure;
  }
  /** The lease generation this channel's start claimed (kept after it ends), or null before a claim. */
  get claimedGeneration(): number | null {
    return this.#generation;
  }

  /** What the last start restored (tier, bytes, ms), or null when it restored nothing. */
  get lastRestore(): LoadedSession | null {
    return this.#restorer.last;
  }
  /** The profile directory LocalAuth uses. */
  get sessionDir(): string {
    return profileDirOf(this.#options.sessionRoot, this.userId);
  }
  /** The Chromium main process id, while the browser runs. */
  get browserPid(): number | null {
    return this.#client?.pupBrowser?.process()?.pid ?? null;
  }
  /** The underlying whatsapp-web.js client (for listeners the channel does not cover). */
  get client(): WaClient | null {
    return this.#client;
  }

  /**
   * Restores the stored session into the profile directory (a no-op when it already
   * holds the stored version). Returns what was restored, or null when there is none.
   * A failed restore is logged and the client starts without it (a QR scan) — except
   * a resume on an instance without the archive's key (`failIfKeyMissing`), see
   * SessionRestorer.restore.
   */
  restoreSessionFromDatabase(options: { failIfKeyMissing?: boolean } = {}): Promise<LoadedSession | null> {
    return this.#restorer.restore(options);
  }

  /**
   * Claims the user's lease, restores, then starts the client; resolves once
   * whatsapp-web.js has initialized. Once only. `resume`: a start by itself (no user
   * asked), only for a session still marked to keep running that nobody holds.
   * @throws SessionLeasedElsewhereError when another instance runs the session;
   *   SessionNotWantedError (resume) when it is not to start by itself; whatever the start threw.
   */
  start({ resume = false }: { resume?: boolean } = {}): Promise<void> {
    this.#starting ??= this.#start(resume);
    return this.#starting;
  }

  async #start(resume: boolean): Promise<void> {
    this.#resumed = resume;
    this.#readyDeadline.start();
    let client: WaClient | undefined;
    try {
      const lease = await this.#lease.claim({ onlyIfKeepRunning: resume });
      this.#generation = lease.generation;
      this.#event("lease_claimed", { generation: lease.generation, ...(resume ? { resumed: true } : {}) });
      if (lease.takenOverFrom) {
        // The owner's name (a server's) goes to the log only: users read their history.
        log("info", "Took a session over from an owner whose lease lapsed", { userId: this.userId, from: lease.takenOverFrom, generation: lease.generation });
        this.#event("lease_taken_over", { generation: lease.generation });
      }
      this.#throwIfStopped();
      await this.#setStatus("initializing");
      await this.restoreSessionFromDatabase({ failIfKeyMissing: resume });
      this.#throwIfStopped();
      client = createWaClient(this.#options);
      this.#client = client;
      guardReinjection(client, this.userId, () => this.#finishing !== null);
      this.#wire(client);
      this.#initializing = client.initialize();
      await this.#initializing;
      this.#initialized = true;
      this.#throwIfStopped();
      // A browser that dies (crash, kill -9) is noticed here; so is a WhatsApp Web page
      // whose renderer dies while the browser lives on (the OOM killer picks renderers
      // first): whatsapp-web.js would wait on it for ever, the channel still "ready".
      const died = (what: string) => () => {
        if (this.#finishing || this.#stopRequested || this.#loggedOut) return;
        log("warn", `WhatsApp ${what}`, { userId: this.userId });
        void this.#finish("disconnected");
      };
      client.pupBrowser?.once("disconnected", died("browser disconnected"));
      client.pupPage?.once("error", died("page crashed"));
    } catch (error) {
      // A resume that finds the session not to be started, or taken, is no failure.
      const expected = error instanceof SessionNotWantedError || (resume && error instanceof SessionLeasedElsewhereError);
      if (!this.#stopRequested && !this.#finishing && !expected) {
        log("error", "WhatsApp client failed to start", { userId: this.userId, code: errorCode(error), error: String(error) });
      }
      await this.#finish(this.#stopRequested ? "disconnected" : "failed");
      // The channel ended while initialize() was launching the browser (a lost lease,
      // say): #finish found no browser to close, so close the one that came up since.
      if (client && this.#client !== client) await destroyQuietly(client);
      throw error;
    }
  }

  /**
   * Not ready in time (see ReadyDeadline): the browser goes at once (without waiting for
   * a start that may hang; closing it ends that start), and the channel ends as after a
   * deploy's stop: the session stays as marked, so a resumed one is tried again later.
   */
  #giveUpNotReady(limitMs: number): void {
    log("info", "A WhatsApp client not ready in time was stopped", { userId: this.userId, status: this.#status, afterMinutes: limitMs / 60_000 });
    this.#event("stale_closed", { afterMinutes: Math.round(limitMs / 60_000) });
    this.#stopRequested = true;
    void this.#closeBrowser().then(() => this.#finish("disconnected"));
  }

  /**
   * A stop does not wait out a start still in initialize() (WhatsApp Web that never
   * finishes loading, say): the browser goes, which ends that start. Nothing is lost: a
   * client not yet initialized has saved nothing.
   */
  #cutShortInitialize(): void {
    if (this.#client && !this.#initialized) void this.#closeBrowser();
  }

  /** A stop, a logout or an end (a lost lease, a crash) came while starting: go no further. */
  #throwIfStopped(): void {
    if (this.#stopRequested || this.#finishing) throw new ChannelStoppedError(this.userId);
  }

  /**
   * Sends a text; the client must be ready. Returns the message id.
   * @throws NotReadyError, SendTimedOutError (the message may yet go out), SendFailedError
   */
  async sendText(chatId: string, text: string): Promise<string> {
    const client = this.#client;
    if (!client || this.#status !== "ready") throw new NotReadyError(this.#status);
    try {
      return await sendWithin(client, chatId, text, this.#options.sendTimeoutMs ?? SEND_TIMEOUT_MS);
    } catch (error) {
      if (errorCode(error) === "send_timeout") throw error;
      if (this.#status !== "ready") throw new NotReadyError(this.#status);
      throw new SendFailedError({ cause: error });
    }
  }

  /** Whether it started by itself (a resume) and no user's connect has joined it since. */
  get startedByItself(): boolean {
    return this.#resumed;
  }

  /**
   * A user's connect joined this client: from now on it is the user's own start (a QR it
   * asks for is theirs to scan; reaching ready ends a run of failed resumes).
   */
  joinedByUser(): void {
    this.#resumed = false;
  }

  /** Whether the user (or an operator's rule) stopped it: it is not to start again by itself. */
  get stoppedByUser(): boolean {
    return this.#stoppedByUser || this.#loggedOut;
  }

  /** Whether its phone has scanned and its first sync was given more time, or that is being checked (see ReadyDeadline): not ready, yet not stale. */
  get syncingNewLink(): boolean {
    return this.#readyDeadline.extended && this.#status !== "ready";
  }

  /** Whether a stop, a logout or an end is under way or done: such a channel never runs again. */
  get stopping(): boolean {
    return this.#stopRequested || this.#finishing !== null;
  }

  /** Resolves once the channel has ended ("closed"), at once if it has. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.once("closed", () => resolve()));
  }

  /**
   * Archives the profile and saves it (fenced by the lease), unless it is unchanged
   * since the last archive. Returns the archive saved, or null (unchanged, logged out,
   * no lease, or failed — logged).
   */
  archiveSessionToDatabase(reason: string): Promise<SessionArchive | null> {
    return this.#saver.save(reason);
  }

  /**
   * Stops the client gracefully: browser first (a consistent profile), then a final
   * archive, then the lease is released for the next instance. Waits for a start in
   * progress to settle first (one still in initialize() is cut short: see
   * #cutShortInitialize). `byUser`: the user wants it stopped, so no instance starts it
   * again by itself (keep_running); a stop for a deploy leaves that as it is.
   */
  async stop({ byUser = false }: { byUser?: boolean } = {}): Promise<void> {
    this.#stopRequested = true;
    if (byUser) this.#stoppedByUser = true;
    this.#cutShortInitialize();
    await this.#starting?.catch(() => {});
    if (this.#finishing) return this.#finishing;
    const wasReady = this.#status === "ready";
    await this.#closeBrowser();
    if (wasReady) await this.archiveSessionToDatabase("stop");
    await this.#finish("disconnected");
  }

  /**
   * Logs out of WhatsApp and deletes the stored session (never uploads an empty profile);
   * false when the stored session could not be deleted.
   */
  async logout(): Promise<boolean> {
    this.#loggedOut = true;
    this.#stopRequested = true;
    // Not cut short, unlike a stop: once initialized the client can log the device out of
    // WhatsApp itself (a start that hangs ends with its ready deadline).
    await this.#starting?.catch(() => {});
    await this.#quiesce();
    try {
      const client = this.#client;
      const late = () => "late" as const;
      if (client && (await settleWithin(client.logout(), LOGOUT_MS, late)) === "late") throw new Error(`no answer within ${LOGOUT_MS} ms`);
    } catch (error) {
      log("warn", "WhatsApp logout did not complete cleanly", { userId: this.userId, error: String(error) });
    }
    const deleted = await this.#endLoggedOut("user");
    // #finish deleted the profile before "closed", unless the channel had closed before
    // this logout came.
    await this.#deleteProfileIfLoggedOut();
    return deleted;
  }

  #wire(client: WaClient): void {
    const live = () => !this.#finishing && !this.#loggedOut;
    // Once the phone has scanned, a QR still on its way (an event the page sent just
    // before, or one still being rendered) is stale: it must not take the status back.
    const wantsQr = () => live() && this.#status !== "authenticating" && this.#status !== "ready";
    client.on("qr", (qr: string) => {
      if (!wantsQr()) return; // the library asks for a new link after a LOGOUT, too
      this.#qr.show(qr).then(
        (shown) => {
          if (!shown || !wantsQr()) return;
          if (this.#status !== "qr_ready") {
            this.#event("qr_issued"); // the first of this wait; the QR itself is never recorded
            this.#restorer.recordOutcome(false, "qr_required");
          }
          void this.#setStatus("qr_ready");
        },
        (error: unknown) => log("warn", "Failed to render the QR code", { userId: this.userId, error: String(error) }),
      );
    });
    client.on("authenticated", () => {
      if (!live()) return;
      this.#qr.clear();
      void this.#setStatus("authenticating");
    });
    client.on("ready", () => {
      if (!live()) return;
      this.#readyDeadline.clear();
      this.#qr.clear();
      this.#phoneNumber = client.info?.wid?.user ?? null;
      void this.#setStatus("ready");
      this.#restorer.recordOutcome(true, "ready");
      void this.#saver.save("ready");
      this.#saver.saveEvery(this.#options.archiveIntervalMs);
    });
    client.on("auth_failure", () => {
      if (!live()) return;
      this.#restorer.recordOutcome(false, "auth_failure");
      void this.#setStatus("failed");
    });
    client.on("disconnected", (reason: string) => {
      if (reason === "LOGOUT") void this.#onPhoneLogout();
      else if (live() && !this.#stopRequested) void this.#finish("disconnected");
    });
  }

  async #onPhoneLogout(): Promise<void> {
    if (this.#loggedOut) return;
    this.#loggedOut = true;
    log("info", "WhatsApp logged out from the phone", { userId: this.userId });
    await this.#quiesce();
    // The library now reloads the page and re-injects; guardReinjection makes closing
    // the browser in the middle of that safe.
    await this.#endLoggedOut("phone");
  }

  /** After a LOGOUT: the stored session deleted (false if that failed), recorded, the channel ended. */
  async #endLoggedOut(by: "user" | "phone"): Promise<boolean> {
    // Held until now, so that no instance resumed the session meanwhile; a renewal of the
    // deleted record would only fail.
    this.#lease.stopRenewing();
    const deleted = await deleteLoggedOutSession(this.#options.store, this.userId, this.#writes, this.#options.events);
    this.#event("logout", { by });
    await this.#finish("disconnected");
    return deleted;
  }

  /**
   * No archives from now on: wait for one in flight. The lease is still renewed (an
   * upload may take longer than its TTL): lapsed, another instance would resume the
   * session and run the device while this one logs it out.
   */
  async #quiesce(): Promise<void> {
    await this.#saver.settle();
  }

  /**
   * Closes the browser (idempotent); an archive in flight finishes first — unless the
   * lease is lost: then nothing it saves can be stored, and the browser must be gone
   * before another instance may start the session.
   */
  async #closeBrowser(leaseLost = false): Promise<void> {
    if (!leaseLost) await this.#saver.settle();
    const client = this.#client;
    this.#client = null;
    // Every caller waits until the browser is gone, not only the first: the lease is
    // released after this, and then another instance may start the session.
    if (client) this.#browserClosed = destroyLaunched(client, this.#initializing, leaseLost ? LOST_LEASE_CLOSE_MS : undefined);
    await this.#browserClosed;
    await this.#saver.settle();
  }

  /** Every way the channel ends: browser closed, status recorded, lease released, then "closed". Once. */
  #finish(status: SessionStatus, { leaseLost = false } = {}): Promise<void> {
    this.#finishing ??= (async () => {
      this.#readyDeadline.clear();
      // A restore still unpacking (the channel ended meanwhile: a lost lease, its ready
      // deadline) finishes first: once "closed", a new start here uses the profile, and
      // the restore's swap must not take it away from under it.
      await this.#restorer.settled();
      // A start that restored a session and ended before ready missed, whatever ended it.
      this.#restorer.recordOutcome(false, this.#stopRequested ? "stopped_before_ready" : status);
      await this.#closeBrowser(leaseLost);
      // A logged-out profile must not outlive the logout: a later start would reuse it.
      await this.#deleteProfileIfLoggedOut();
      // The last status goes in before the lease is released: once it is, the next
      // instance's status must not be written over.
      await this.#setStatus(status);
      await this.#lease.release();
      // A logout that came while this was under way: its profile goes before "closed",
      // never after, when a new client of this user's may be using the directory.
      await this.#deleteProfileIfLoggedOut();
      this.#closed = true;
      this.emit("closed");
    })();
    return this.#finishing;
  }

  /** After a logout, the profile goes from disk (a later start must not reuse it); once. */
  async #deleteProfileIfLoggedOut(): Promise<void> {
    if (!this.#loggedOut || this.#profileDeleted) return;
    this.#profileDeleted = true;
    await deleteLoggedOutProfile(this.sessionDir, this.userId);
  }

  /** Resolves once every status change so far is recorded in PocketBase. */
  statusRecorded(): Promise<void> {
    return this.#writes.idle();
  }

  /** Records a history event of this session (in the background; never fails the channel). */
  #event(event: SessionEventType, data: Record<string, unknown> = {}, status?: SessionStatus): void {
    this.#options.events?.record(this.userId, event, { data, ...(status ? { status } : {}) });
  }

  #setStatus(status: SessionStatus): Promise<void> {
    if (this.#status === status) return this.statusRecorded();
    this.#status = status;
    this.emit("status", status);
    log("info", "WhatsApp status changed", { userId: this.userId, status });
    // After a LOGOUT the record is deleted with the session; a channel that never held
    // the lease has no status of its own to record (nor events).
    if (this.#loggedOut || this.#generation === null) return this.statusRecorded();
    this.#event("status", {}, status);
    const channel = { userId: this.userId, lease: this.#lease, writes: this.#writes, store: this.#options.store };
    return writeStatus(channel, status, { phoneNumber: this.#phoneNumber, stoppedByUser: this.#stoppedByUser, resumed: this.#resumed });
  }
}
