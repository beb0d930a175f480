import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";

import { log } from "../../log";
import { ArchiveCorruptError, ArchiveDecryptError, ArchiveKeyMissingError, ArchiveTooLargeError, UnsafeArchiveError } from "../archive-errors";
import { VERSION_MARKER, type DatabaseSessionStore, type LoadedSession } from "../database-session-store";
import type { SessionEventType } from "../session-event-log";
import { errorCode } from "../session-store-errors";

/** The stored archive itself is unusable (as opposed to the store being unreachable). */
const UNRESTORABLE = [ArchiveCorruptError, ArchiveDecryptError, ArchiveTooLargeError, UnsafeArchiveError];

/**
 * One channel start's restore of the stored session, and its outcome: a start that
 * restored (or tried to) either reaches ready without a QR or it does not, and that is
 * recorded once — the health route's restore success rate counts these.
 */
export class SessionRestorer {
  readonly #userId: string;
  readonly #sessionDir: string;
  readonly #store: DatabaseSessionStore;
  readonly #event: (event: SessionEventType, data: Record<string, unknown>) => void;
  #last: LoadedSession | null = null;
  #tried = false;
  #outcomeRecorded = false;
  /** The restore under way or done, settled either way. */
  #restoring: Promise<unknown> = Promise.resolve();

  constructor(
    userId: string,
    sessionDir: string,
    store: DatabaseSessionStore,
    event: (event: SessionEventType, data: Record<string, unknown>) => void,
  ) {
    this.#userId = userId;
    this.#sessionDir = sessionDir;
    this.#store = store;
    this.#event = event;
  }

  /** What the restore brought back (tier, bytes, ms), or null when it restored nothing. */
  get last(): LoadedSession | null {
    return this.#last;
  }

  /**
   * Restores the stored session into the profile directory (a no-op when it already
   * holds the stored version). Returns what was restored, or null when there is none.
   *
   * A profile that came from the database (it carries the version marker) is started
   * only while the database still holds that version: when the database has no session
   * any more (a logout or a cleanup handled by another instance) or its archive cannot
   * be restored (then the local copy is an older version), the profile is deleted, so
   * a logout is never undone and a newer archive never overwritten by an older
   * profile. A stored archive that cannot be restored is logged and recorded, and the
   * client starts without it (a QR) — unless `failIfKeyMissing` and this instance lacks
   * the archive's key: a resume has nobody to scan a QR, and the cause is this
   * instance's configuration, not the archive, so the start fails instead and the
   * session waits, still marked, for an instance that has the key.
   * @throws whatever else the restore threw (PocketBase unreachable, a full disk): the
   *   start fails rather than run a profile the database may not vouch for;
   *   ArchiveKeyMissingError with `failIfKeyMissing`.
   */
  restore(options: { failIfKeyMissing?: boolean } = {}): Promise<LoadedSession | null> {
    const restoring = this.#restore(options);
    this.#restoring = restoring.catch(() => {});
    return restoring;
  }

  /**
   * Resolves once no restore is under way (at once if none was started). A channel that
   * ends waits for it: a new start must not have its profile swapped away by an old restore.
   */
  settled(): Promise<unknown> {
    return this.#restoring;
  }

  async #restore({ failIfKeyMissing = false }: { failIfKeyMissing?: boolean }): Promise<LoadedSession | null> {
    const userId = this.#userId;
    let loaded: LoadedSession | null;
    try {
      loaded = await this.#store.loadSession(userId, this.#sessionDir);
    } catch (error) {
      log("error", "Failed to restore session from database", { userId, code: errorCode(error), error: String(error) });
      this.#tried = true;
      this.#event("restore_failed", { code: errorCode(error) });
      if (!UNRESTORABLE.some((type) => error instanceof type)) throw error;
      await this.#dropProfileFromDatabase("its stored archive cannot be restored");
      if (failIfKeyMissing && error instanceof ArchiveKeyMissingError) throw error;
      return null;
    }
    this.#last = loaded;
    if (!loaded) {
      await this.#dropProfileFromDatabase("the database holds no session for it any more");
      return null;
    }
    const ms = Math.round(loaded.ms);
    log("info", "Session restored from database", { userId, tier: loaded.tier, bytes: loaded.sizeBytes, ms });
    this.#tried = true;
    this.#event("restore", { bytes: loaded.sizeBytes, ms, tier: loaded.tier });
    return loaded;
  }

  /** Deletes the profile directory if it came from the database (a profile never saved stays). */
  async #dropProfileFromDatabase(why: string): Promise<void> {
    if (!existsSync(path.join(this.#sessionDir, VERSION_MARKER))) return;
    log("warn", "Deleting a local profile the database no longer vouches for", { userId: this.#userId, why });
    await rm(this.#sessionDir, { recursive: true, force: true });
  }

  /** Once per start that restored a session: did it reach ready without a QR? */
  recordOutcome(success: boolean, reason: string): void {
    if (!this.#tried || this.#outcomeRecorded) return;
    this.#outcomeRecorded = true;
    this.#event("restore_outcome", { success, reason });
  }
}
