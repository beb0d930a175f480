import { existsSync } from "node:fs";

import { log } from "../../log";
import { ProfileChangedError } from "../archive-errors";
import type { DatabaseSessionStore } from "../database-session-store";
import type { LeaseKeeper } from "../lease-keeper";
import { fingerprintOf, scanProfile } from "../profile-scan";
import { disposeArchive, type SessionArchive, type SessionArchiver } from "../session-archiver";
import { LeaseLostError } from "../session-lease";
import { errorCode } from "../session-store-errors";

export interface SessionSaverOptions {
  userId: string;
  /** The profile directory of the running client. */
  sessionDir: string;
  store: DatabaseSessionStore;
  archiver: SessionArchiver;
  /** The channel's lease: a save is fenced by it, and told when it was lost. */
  lease: LeaseKeeper;
  /** The channel's queue of writes to the session record (a save is one of them). */
  write: <T>(work: () => Promise<T>) => Promise<T>;
  /** Whether the session was logged out: an empty profile must never be saved. */
  loggedOut: () => boolean;
  phoneNumber: () => string | null;
  /** Called after each save that reached PocketBase. */
  onSaved: (archive: SessionArchive, reason: string, ms: number) => void;
  /** Called when saves start failing, and when the cause changes while they fail (not on every failed try). */
  onFailing: (failure: SaveFailure, reason: string) => void;
}

/** Why the profile's latest saves failed (a typed error's code), and since when. */
export interface SaveFailure {
  code: string;
  since: Date;
}

/**
 * Saves one running client's profile to PocketBase: on request (ready, a stop) and on
 * an interval, one save at a time, and only when the profile changed since the last
 * one. A save while the browser runs is retried when a kept file changed as it was
 * read (ProfileChangedError), so a torn IndexedDB is never uploaded.
 */
export class SessionSaver {
  readonly #options: SessionSaverOptions;
  #lastFingerprint: string | null = null;
  #lastSavedAt: Date | null = null;
  #timer: NodeJS.Timeout | null = null;
  #saving: Promise<SessionArchive | null> | null = null;
  #failure: SaveFailure | null = null;

  constructor(options: SessionSaverOptions) {
    this.#options = options;
  }

  get lastSavedAt(): Date | null {
    return this.#lastSavedAt;
  }

  /** Why the latest save failed, while the profile has changes no save got through with; else null. */
  get failure(): SaveFailure | null {
    return this.#failure;
  }

  /**
   * Archives and saves the profile unless it is unchanged; joins a save in progress.
   * Returns the archive saved, or null (unchanged, logged out, no lease, or failed — logged).
   */
  save(reason: string): Promise<SessionArchive | null> {
    this.#saving ??= this.#save(reason).finally(() => (this.#saving = null));
    return this.#saving;
  }

  /** Saves every `intervalMs` from now on, until `settle()`. */
  saveEvery(intervalMs: number): void {
    this.#stopInterval();
    this.#timer = setInterval(() => void this.save("interval"), intervalMs);
    this.#timer.unref();
  }

  /** Stops the interval and waits for a save in progress; `save()` still works after. */
  async settle(): Promise<void> {
    this.#stopInterval();
    await this.#saving?.catch(() => null);
  }

  /**
   * A save failed: logged each time, reported when a run of failures starts or its cause
   * changes. A browser that kept writing through every try (profile_changed) is no
   * failure: the next interval's save gets a quieter moment.
   */
  #failed(error: unknown, reason: string): void {
    const code = errorCode(error);
    if (error instanceof ProfileChangedError) {
      log("info", "Session not archived: the browser kept writing; the next save tries again", { userId: this.#options.userId, reason });
      return;
    }
    log("error", "Failed to archive session", { userId: this.#options.userId, reason, code, error: String(error) });
    if (this.#failure?.code === code) return;
    this.#failure = { code, since: this.#failure?.since ?? new Date() };
    this.#options.onFailing(this.#failure, reason);
  }

  #stopInterval(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #save(reason: string): Promise<SessionArchive | null> {
    const { userId, sessionDir, store, archiver, lease: keeper } = this.#options;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let archive: SessionArchive | null = null;
      try {
        if (this.#options.loggedOut() || !keeper.lease) return null;
        // One walk of the profile both says "unchanged" and feeds the archive.
        const scan = existsSync(sessionDir) ? await scanProfile(sessionDir) : null;
        if (scan && fingerprintOf(scan) === this.#lastFingerprint) return null; // unchanged
        archive = await archiver.archiveSession(sessionDir, scan ?? undefined);
        const [saving, lease] = [archive, keeper.lease];
        // Checked again: a LOGOUT may have emptied the profile while it was read.
        if (this.#options.loggedOut() || !lease) return null;
        await this.#options.write(() =>
          store.saveSession(userId, saving, this.#options.phoneNumber() ?? undefined, { reason }, lease),
        );
        await store.markLocalVersion(sessionDir, archive.sha256);
        this.#lastFingerprint = archive.fingerprint;
        this.#lastSavedAt = new Date();
        this.#failure = null;
        const ms = Math.round(performance.now() - started);
        log("info", "Session archived to database", { userId, reason, bytes: archive.sizeBytes, rawBytes: archive.rawBytes, ms });
        this.#options.onSaved(archive, reason, ms);
        return archive;
      } catch (error) {
        if (error instanceof ProfileChangedError && attempt < 3) continue; // the browser was writing
        if (error instanceof LeaseLostError) keeper.lost();
        else this.#failed(error, reason);
        return null;
      } finally {
        if (archive) await disposeArchive(archive);
      }
    }
  }
}
