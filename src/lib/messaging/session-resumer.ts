import type PocketBase from "pocketbase";

import { log } from "../log";
import type { WhatsAppChannel } from "./channels/whatsapp-channel";
import type { ConnectionManager } from "./connection-manager";
import type { InstanceRegistry } from "./instance-registry";
import { ResumeShare } from "./resume-share";
import { SESSIONS_COLLECTION, type SessionStatus } from "./database-session-store";
import { errorCode, toStoreError } from "./session-store-errors";

export interface SessionResumerOptions {
  pb: PocketBase;
  manager: ConnectionManager;
  /**
   * The instances that resume sessions: this one is announced there while it resumes,
   * and leaves waiting sessions to one that runs fewer for its cap (see ResumeShare).
   * Without it, every instance takes what it has room for.
   */
  registry?: InstanceRegistry;
  /** At most this many sessions started per round, one after another (default 10). */
  batch?: number;
  /** The first wait after a failed resume of a session; it doubles per failure in a row, up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A resumed session that ends sooner than this after ready counts as a failure (default 10 min). */
  stableMs?: number;
  /**
   * A session this instance has left to a less loaded one for longer than this is taken
   * anyway, if there is room (default 2 min): that instance may be stuck or slow.
   */
  patienceMs?: number;
}

/** How a resumed client's start ended. */
type Outcome = "ready" | "needs_qr" | "ended";

const PAGE = 200;
const MAX_PAGES = 10;

/**
 * Starts the sessions that are to keep running (`keep_running`: they reached ready and
 * the user has not stopped them) and that no instance runs (no live lease): after a
 * deploy, a restart, a crashed instance or a crashed browser, with no QR and nobody
 * pressing Connect. Each round (`start(intervalMs)`) takes at most `batch` of them, one
 * at a time, while this instance has room (a round that fills its batch is followed by
 * another at once); several instances share the work through
 * the leases: the client's own claim checks the mark and that no lease is live in one
 * transaction, so a user's stop is never undone and a session never starts twice. A
 * resumed session that asks for a QR (the phone unlinked it meanwhile) is stopped and
 * unmarked; one that fails to start, or ends within `stableMs` of ready, is tried again
 * later, waiting longer after each failure in a row. The failures are kept with the
 * session (`resume_failures`, `resume_after`), so every instance waits for the same next
 * try, and the claim's transaction checks it is due.
 *
 * With a `registry`, the waiting sessions spread over the instances (ResumeShare): a
 * session is left, for at most `patienceMs`, to a live instance that runs fewer for its
 * cap, and while this instance's starts keep failing, to any that takes sessions.
 */
export class SessionResumer {
  readonly #options: Required<Omit<SessionResumerOptions, "pb" | "manager" | "registry">> & SessionResumerOptions;
  /** Notes on how resumes went, still being written (settled() waits for them). */
  readonly #notes = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<number> | null = null;
  #stopped = false;
  readonly #share: ResumeShare;

  constructor(options: SessionResumerOptions) {
    this.#options = { batch: 10, backoffMs: 60_000, maxBackoffMs: 30 * 60_000, stableMs: 10 * 60_000, patienceMs: 2 * 60_000, ...options };
    const { manager, registry, patienceMs, maxBackoffMs } = this.#options;
    this.#share = new ResumeShare({ manager, registry, patienceMs, failingWindowMs: maxBackoffMs });
  }

  /** Runs a round now and then every `intervalMs`, until `stop()`. */
  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#stopped = false;
    this.#share.announce(() => this.#stopped);
    void this.#resumeWhileBusy();
    this.#timer = setInterval(() => void this.#resumeWhileBusy(), intervalMs);
    this.#timer.unref();
  }

  /** No further rounds; waits for the one under way. */
  async stop(): Promise<void> {
    await this.withdraw();
    await this.#round;
    await this.settled();
  }

  /**
   * No further rounds, and no other instance waits for this one to take sessions (its
   * record is deleted): the first step of a shutdown, before its clients release theirs.
   */
  async withdraw(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#share.leave();
  }

  /** One round (joins one under way): returns how many sessions it started. */
  resumeOnce(): Promise<number> {
    this.#round ??= this.#resume()
      .catch((error: unknown) => {
        log("warn", "Could not look for sessions to resume", { code: errorCode(error), error: String(error) });
        return 0;
      })
      .finally(() => (this.#round = null));
    return this.#round;
  }

  /** Rounds back to back while a round fills its batch (more may be waiting), then on the interval again. */
  async #resumeWhileBusy(): Promise<void> {
    while (!this.#stopped && (await this.resumeOnce()) >= this.#options.batch);
  }

  async #resume(): Promise<number> {
    let started = 0;
    const candidates = await this.#candidates();
    const share = this.#share.round();
    for (const userId of candidates) {
      if (this.#stopped || started >= this.#options.batch) break;
      if (this.#options.manager.get(userId)) continue; // it may have started since the look-up
      if (!this.#options.manager.canCreateConnection(userId)) {
        this.#share.full(); // and leave the rest to other instances
        break;
      }
      if (!(await share.take(userId))) continue; // left to a less loaded instance, for now
      const result = await this.#resumeUser(userId);
      if (result === "full") break;
      if (result === "started") started += 1;
    }
    share.end();
    return started;
  }

  /**
   * How many sessions, over every instance, are to keep running and have an archive but
   * run nowhere (no live lease): right after a deploy, the ones not resumed yet; if it
   * stays above 0, there is no room for them, or they fail to start. `failing`: those
   * of them whose last resumes failed (they wait before the next try).
   * @throws PocketBaseUnavailableError, SessionStoreError
   */
  async countWaiting(): Promise<{ waiting: number; failing: number }> {
    const { pb } = this.#options;
    const count = async (filter: string) =>
      (await pb.collection(SESSIONS_COLLECTION).getList(1, 1, { filter, fields: "id", requestKey: null })).totalItems;
    const waitingNow = waitingFilter();
    try {
      const [waiting, failing] = await Promise.all([count(waitingNow), count(`${waitingNow} && resume_failures > 0`)]);
      return { waiting, failing };
    } catch (error) {
      throw toStoreError(error, "count the sessions waiting to resume");
    }
  }

  /** Users whose session is to keep running, has an archive and no live lease, longest idle first, leaving out those waiting after failed resumes. */
  async #candidates(): Promise<string[]> {
    const { pb } = this.#options;
    const filter = waitingFilter({ dueOnly: true });
    const due: string[] = [];
    for (let page = 1; page <= MAX_PAGES && due.length < this.#options.batch; page++) {
      let list;
      try {
        list = await pb.collection(SESSIONS_COLLECTION).getList(page, PAGE, { filter, sort: "last_active", fields: "user", skipTotal: true });
      } catch (error) {
        throw toStoreError(error, "find sessions to resume");
      }
      for (const record of list.items) {
        const userId = String(record.user);
        if (!this.#options.manager.get(userId)) due.push(userId);
      }
      if (list.items.length < PAGE) break;
    }
    return due;
  }

  /** Starts one user's session as a resume; "started" even if it may yet ask for a QR (it is then stopped). */
  async #resumeUser(userId: string): Promise<"started" | "skipped" | "full"> {
    const { manager } = this.#options;
    const starting = manager.connect(userId, { resume: true });
    // connect() registers a client it creates before it returns: this is the resume's own
    // (a resume never joins another start), and it knows the lease generation it claims.
    const own = manager.get(userId);
    let channel: WhatsAppChannel;
    try {
      channel = await starting;
    } catch (error) {
      const code = errorCode(error);
      // Not to start, taken elsewhere, or stopped meanwhile (a user's disconnect, a shutdown): no failure.
      if (["not_wanted", "leased_elsewhere", "shutting_down", "channel_stopped"].includes(code) || this.#stopped) return "skipped";
      if (code === "connection_limit") return "full";
      const generation = own?.claimedGeneration ?? null;
      if (generation !== null) this.#share.countStart(true); // failed here, not for want of PocketBase before the claim
      this.#note(userId, generation, "failed", code);
      return "skipped";
    }
    log("info", "Session resumed", { userId });
    void this.#followUp(userId, channel);
    return "started";
  }

  /** Watches a resumed client: ready and still up after `stableMs`, asks for a QR (then stops it), or ends. */
  async #followUp(userId: string, channel: WhatsAppChannel): Promise<void> {
    const outcome = await outcomeOf(channel);
    // A user's connect joined it meanwhile: the client is theirs (a QR it shows is theirs
    // to scan), and how it goes says nothing about resuming.
    if (!channel.startedByItself) return;
    if (outcome === "ended") {
      if (channel.stoppedByUser || this.#stopped) return;
      this.#share.countStart(true);
      this.#note(userId, channel.claimedGeneration, "failed", "ended_before_ready");
      return;
    }
    this.#share.countStart(false); // ready, or a QR: the browser and WhatsApp Web work here
    if (outcome === "needs_qr") {
      // Nobody is there to scan it: stop, and leave the session to the user's next connect.
      log("warn", "A resumed session asks for a QR (unlinked on the phone?); stopping it", { userId });
      await this.#options.manager.disconnect(userId).catch(() => false);
      return;
    }
    // Ready. One that dies again soon (a crash, whatsapp-web.js giving up) must not be
    // restarted every round: it counts as a failure until it has stayed up a while.
    let timer: NodeJS.Timeout | undefined;
    const stayedUp = await Promise.race([
      channel.whenClosed().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.#options.stableMs).unref())),
    ]);
    clearTimeout(timer);
    if (!channel.startedByItself) return; // a user's connect joined it meanwhile (see above)
    if (stayedUp) this.#note(userId, channel.claimedGeneration, "stayed_up");
    else if (!channel.stoppedByUser && !this.#stopped) this.#note(userId, channel.claimedGeneration, "failed", "ended_soon_after_ready");
  }

  /** Resolves once the notes taken so far are written (a stop waits for them). */
  async settled(): Promise<void> {
    while (this.#notes.size > 0) await Promise.all(this.#notes);
  }

  /**
   * Writes down how the resume under lease `generation` went (the resume-note hook
   * route, in one transaction): a failure adds one to the session's run of failures and
   * sets when the next try is due (waiting `backoffMs`, doubled per failure in a row, at
   * most `maxBackoffMs`); "stayed_up" ends the run. A note made after a newer claim (the
   * user connected meanwhile) changes nothing. A start that failed before it claimed
   * (PocketBase unreachable, say) is the session's fault no more than the next one's: no note.
   */
  #note(userId: string, generation: number | null, outcome: "failed" | "stayed_up", code = ""): void {
    if (generation === null) return;
    const write = this.#writeNote(userId, generation, outcome, code)
      .catch((error: unknown) => log("warn", "Could not note how a resume went", { userId, outcome, code: errorCode(error) }))
      .finally(() => this.#notes.delete(write));
    this.#notes.add(write);
  }

  async #writeNote(userId: string, generation: number, outcome: "failed" | "stayed_up", code: string): Promise<void> {
    const { pb, backoffMs, maxBackoffMs } = this.#options;
    const body = { user: userId, generation, outcome, ...(outcome === "failed" ? { backoffMs, maxBackoffMs } : {}) };
    let result: { applied: boolean; failures: number };
    try {
      result = await pb.send("/api/wavault/sessions/resume-note", { method: "POST", body });
    } catch (error) {
      throw toStoreError(error, "note how a resume went");
    }
    if (outcome === "failed" && result.applied) {
      log("warn", "A resumed session did not stay up; trying again later", { userId, code, failures: result.failures });
    }
  }
}

/**
 * Sessions to keep running, with an archive, that no instance holds (no live lease);
 * with `dueOnly`, leaving out those waiting after failed resumes (resume_after ahead).
 * By PocketBase's clock (@now), the one the leases are written with.
 */
function waitingFilter({ dueOnly = false }: { dueOnly?: boolean } = {}): string {
  const due = dueOnly ? " && (resume_after = '' || resume_after <= @now)" : "";
  return `keep_running = true && archive != '' && (lease_owner = '' || lease_expires = '' || lease_expires < @now)${due}`;
}

/** Resolves with how a client's start ends: ready, a QR (needs a scan), or the channel stopping first. */
function outcomeOf(channel: WhatsAppChannel): Promise<Outcome> {
  const settled = (status: SessionStatus): Outcome | null =>
    status === "ready" ? "ready" : status === "qr_ready" ? "needs_qr" : channel.stopping ? "ended" : null;
  const now = settled(channel.status);
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const done = (outcome: Outcome) => {
      channel.off("status", onStatus);
      channel.off("closed", onClosed);
      resolve(outcome);
    };
    const onStatus = (status: SessionStatus) => {
      const outcome = settled(status);
      if (outcome) done(outcome);
    };
    const onClosed = () => done("ended");
    channel.on("status", onStatus);
    channel.once("closed", onClosed);
  });
}
