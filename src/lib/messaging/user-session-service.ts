import { rm } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

import { log } from "../log";
import { CHANNEL_STOPPED, NotReadyError } from "./channels/channel-errors";
import type { WhatsAppChannel } from "./channels/whatsapp-channel";
import type { SessionStatus } from "./database-session-store";
import type { InstanceLoad } from "./instance-registry";
import type { SessionEvent } from "./session-event-log";
import { readSessionSummary, type SessionSummary, type StoredArchiveSummary } from "./session-summary";
import { NO_ROOM_CODES } from "./connection-manager";
import { SessionLeasedElsewhereError } from "./session-lease";
import { errorCode } from "./session-store-errors";
import { getWhatsAppRuntime, type WhatsAppRuntime } from "./whatsapp-runtime";

/** A user's WhatsApp session as the API and the dashboard show it. */
export interface UserSessionView {
  status: SessionStatus;
  /** The QR code to scan, as a PNG data URL, only while the status is qr_ready. */
  qr: string | null;
  phoneNumber: string | null;
  lastActive: string | null;
  archive: StoredArchiveSummary | null;
  /** Once ready, the session runs until the user disconnects or logs out: after a deploy, a restart or a crash an instance starts it again by itself. */
  keepRunning: boolean;
  /**
   * While the running client's latest saves fail (the stored session lags behind): the
   * failure's code and since when (ISO). Null otherwise, and when no client runs.
   */
  archiveError: { code: string; since: string } | null;
}

/** How long a connect request waits for the client to start (QR shown, or authenticating). */
const CONNECT_WAIT_MS = 20_000;
const ACTIVE: SessionStatus[] = ["created", "initializing", "qr_ready", "authenticating", "ready"];

/**
 * What one user may do with their own WhatsApp session, over this process's runtime:
 * connect, read the status, send a text, disconnect (keeping the stored session) and
 * log out (deleting it). Every method acts on `userId`'s session only.
 */
export class UserSessionService {
  readonly #runtime: WhatsAppRuntime;
  readonly #connectWaitMs: number;

  constructor(runtime: WhatsAppRuntime, options: { connectWaitMs?: number } = {}) {
    this.#runtime = runtime;
    this.#connectWaitMs = options.connectWaitMs ?? CONNECT_WAIT_MS;
  }

  /**
   * Starts the user's client, or finds the running one, and waits a little for it to
   * show a QR code or authenticate; a slower start goes on in the background.
   * @throws ConnectionLimitError, SessionLeasedElsewhereError, ShuttingDownError,
   *   PocketBaseUnavailableError, or what the start threw
   */
  async connect(userId: string): Promise<UserSessionView> {
    // Read unless a client runs here that the connect joins. One stopping is replaced,
    // once it has gone: until then its stop (a logout's deletion, a last archive) may
    // still change what is stored.
    const running = this.#runtime.manager.get(userId);
    let newLink = false;
    if (!running || running.stopping) {
      await running?.whenClosed();
      const summary = await readSessionSummary(this.#runtime.pb, userId);
      // Running elsewhere: say so before starting anything here (the claim would refuse it
      // too, but only after this instance had made room for a client and counted a failure).
      if (!running) this.#throwIfLeasedElsewhere(userId, summary);
      // Nothing stored to restore: the client started now will wait for a QR scan.
      newLink = !summary?.archive;
    }
    // A disconnect or logout that overtakes the start ends it: then the answer is the status.
    const starting = this.#runtime.manager.connect(userId, { newLink }).catch((error: unknown) => {
      // By code: the runtime may come from another bundle's copy of this module (see isPocketBaseError).
      if (errorCode(error) === CHANNEL_STOPPED) return;
      // No room here (for a new link, say): the others hear it now, not at the next heartbeat.
      if (NO_ROOM_CODES.has(errorCode(error))) void this.#runtime.registry.beat();
      throw error;
    });
    // A start that fails within the wait fails the request (the route logs it); one that
    // fails after the answer went out is logged here.
    let answered = false;
    starting.catch((error: unknown) => answered && log("warn", "WhatsApp connect did not complete", { userId, code: errorCode(error), error: String(error) }));
    const timeout = new AbortController();
    try {
      await Promise.race([starting, delay(this.#connectWaitMs, undefined, { signal: timeout.signal })]);
    } finally {
      answered = true;
      timeout.abort();
    }
    return this.status(userId);
  }

  /**
   * Where `userId`'s connect this instance has no room for can go: the other live
   * instances that take sessions (for a user with no stored session, new links too) and
   * said where they answer, the least loaded first.
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async peersWithRoomFor(userId: string): Promise<InstanceLoad[]> {
    const newLink = !(await readSessionSummary(this.#runtime.pb, userId))?.archive;
    return this.#runtime.registry.peersWithRoom({ newLink });
  }

  /** The user's session: the live client on this instance, else the stored record. */
  async status(userId: string): Promise<UserSessionView> {
    return (await this.statusAndOwner(userId)).view;
  }

  /**
   * The user's session as this instance sees it, and, when another instance runs it and
   * said where it answers, that address: only that instance has the live status and the QR.
   */
  async statusAndOwner(userId: string): Promise<{ view: UserSessionView; ownerUrl: string | null }> {
    const summary = await readSessionSummary(this.#runtime.pb, userId);
    const stored: UserSessionView = {
      status: storedStatus(summary),
      qr: null,
      phoneNumber: summary?.phoneNumber ?? null,
      lastActive: summary?.lastActive ?? null,
      archive: summary?.archive ?? null,
      keepRunning: summary?.keepRunning ?? false,
      archiveError: null,
    };
    const channel = this.#runtime.manager.get(userId);
    if (channel) {
      const live = {
        status: channel.status,
        qr: channel.qr?.dataUrl ?? null,
        phoneNumber: channel.phoneNumber ?? stored.phoneNumber,
        archiveError: archiveErrorOf(channel),
      };
      return { view: { ...stored, ...live }, ownerUrl: null };
    }
    return { view: stored, ownerUrl: this.#runsElsewhere(userId, summary) ? summary!.lease!.ownerUrl : null };
  }

  /**
   * Sends a text from the user's WhatsApp. Returns the message id. With an
   * `idempotencyKey`, a retry of a send made in the last day (the same key and message,
   * here or on an instance that ran the session before) sends nothing and gets the first
   * send's id, `replayed` (see IdempotentSends).
   * @throws NotReadyError, SessionLeasedElsewhereError (it runs on another instance), SendFailedError,
   *   IdempotencyKeyReusedError, IdempotencyKeyInProgressError, PocketBaseUnavailableError
   *   and SessionStoreError (a key that could not be claimed: nothing was sent)
   */
  async sendText(userId: string, chatId: string, text: string, idempotencyKey?: string): Promise<{ id: string; replayed?: true }> {
    const send = async () => {
      const channel = this.#runtime.manager.get(userId);
      if (!channel) {
        this.#throwIfLeasedElsewhere(userId, await readSessionSummary(this.#runtime.pb, userId));
        throw new NotReadyError("disconnected");
      }
      return channel.sendText(chatId, text);
    };
    if (!idempotencyKey) return { id: await send() };
    // Run by another instance: forwarded there before a key is claimed here (a claim
    // left by a refusal here would stand in the way of the owner's send).
    if (!this.#runtime.manager.get(userId)) this.#throwIfLeasedElsewhere(userId, await readSessionSummary(this.#runtime.pb, userId));
    const { id, replayed } = await this.#runtime.sends.send(userId, idempotencyKey, { to: chatId, text }, send);
    return replayed ? { id, replayed } : { id };
  }

  /**
   * Stops the user's client, archiving it one last time (the answer's archiveError says
   * when that, too, failed); the stored session stays, and no instance starts it again
   * by itself. Without a client here (its instance died, say)
   * the session is unmarked all the same, under its lease, so nobody resumes it.
   * @throws SessionLeasedElsewhereError when another instance runs it;
   *   PocketBaseUnavailableError, with nothing stopped, when PocketBase does not answer
   */
  async disconnect(userId: string): Promise<UserSessionView> {
    const { manager } = this.#runtime;
    const client = manager.get(userId);
    for (;;) {
      // PocketBase must answer first: a stop it cannot record leaves the session marked to
      // keep running, and some instance would start it again once PocketBase is back.
      await readSessionSummary(this.#runtime.pb, userId);
      const stopped = await manager.disconnect(userId);
      const summary = await readSessionSummary(this.#runtime.pb, userId);
      if (!stopped) this.#throwIfLeasedElsewhere(userId, summary);
      // Still marked: no client ran here, or its last status write did not say so (it
      // was already ending: a crashed browser, a lost lease; or the write failed).
      if (!summary?.keepRunning) break;
      if ((await manager.whileNoClient(userId, () => this.#stopResuming(userId))).ran) break;
    }
    // A final archive that failed too: the answer says the stored session lags behind.
    const view = await this.status(userId);
    return client?.archiveFailure ? { ...view, archiveError: archiveErrorOf(client) } : view;
  }

  /** Unmarks keep_running while holding the session's lease (no resume can claim it meanwhile). */
  async #stopResuming(userId: string): Promise<void> {
    const { leases, store } = this.#runtime;
    const lease = await leases.claim(userId);
    try {
      await store.recordStatus(lease, "disconnected", { keepRunning: false });
    } finally {
      await leases.release(lease).catch(() => {});
    }
  }

  /**
   * Logs out of WhatsApp (the phone's linked device goes away) and deletes the stored
   * session and the local profile. Without a running client here, the session's lease
   * is claimed first (so no instance starts it meanwhile) and only the stored session
   * and the profile are deleted: the phone lists the device until it is removed there.
   * @throws SessionLeasedElsewhereError when another instance runs it; PocketBaseUnavailableError
   *   when the stored session could not be deleted (retry)
   */
  async logout(userId: string): Promise<UserSessionView> {
    const { manager, store } = this.#runtime;
    for (;;) {
      const channel = manager.get(userId);
      if (channel) {
        // Only if the channel's own delete failed: once it has released the lease, another
        // instance may claim the session, and its new record is not this logout's to delete.
        if (!(await channel.logout())) await store.deleteSession(userId);
        break;
      }
      if ((await manager.whileNoClient(userId, () => this.#logoutWithoutClient(userId))).ran) break;
    }
    return this.status(userId);
  }

  async #logoutWithoutClient(userId: string): Promise<void> {
    const { leases, store } = this.#runtime;
    const lease = await leases.claim(userId);
    try {
      await store.deleteSession(userId); // the lease goes with the record
    } catch (error) {
      await leases.release(lease).catch(() => {});
      throw error;
    }
    // The local profile is logged in too: a later start must not reuse it.
    await rm(this.#runtime.sessionDir(userId), { recursive: true, force: true });
    this.#runtime.events.forgetSession(userId);
    this.#runtime.events.record(userId, "logout", { data: { by: "user", client: false } });
  }

  /** The user's latest session events (at most `limit`), newest first. */
  events(userId: string, limit = 20): Promise<SessionEvent[]> {
    return this.#runtime.events.list(userId, limit);
  }

  #throwIfLeasedElsewhere(userId: string, summary: SessionSummary | null): void {
    if (this.#runsElsewhere(userId, summary)) {
      const { owner, expiresAt, ownerUrl } = summary!.lease!;
      throw new SessionLeasedElsewhereError(userId, owner, new Date(expiresAt), ownerUrl);
    }
  }

  /** Whether another instance holds the session's live lease while no client runs here. */
  #runsElsewhere(userId: string, summary: SessionSummary | null): boolean {
    const lease = summary?.lease;
    // A lease this process still holds after its client ended (a release that did not get through) is not elsewhere.
    return Boolean(lease && lease.owner !== this.#runtime.leases.owner && !this.#runtime.manager.get(userId));
  }
}

/**
 * The status a record shows when no client runs here. A session whose lease lapsed
 * was left by an instance that died: whatever status it wrote, it is disconnected.
 */
/** A client's failing saves, as the API shows them (null while they succeed). */
function archiveErrorOf(channel: WhatsAppChannel): UserSessionView["archiveError"] {
  const failure = channel.archiveFailure;
  return failure ? { code: failure.code, since: failure.since.toISOString() } : null;
}

function storedStatus(summary: SessionSummary | null): SessionStatus {
  if (!summary) return "disconnected";
  if (ACTIVE.includes(summary.status) && !summary.lease) return "disconnected";
  return summary.status;
}

/** The service over this process's runtime. */
export async function getUserSessionService(): Promise<UserSessionService> {
  return new UserSessionService(await getWhatsAppRuntime());
}
