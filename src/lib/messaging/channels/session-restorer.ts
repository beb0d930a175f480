import { log } from "../../log";
import type { DatabaseSessionStore, LoadedSession } from "../database-session-store";
import type { SessionEventType } from "../session-event-log";
import { errorCode } from "../session-store-errors";

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
   * A failed restore is logged and recorded, and the client starts without it (a QR).
   */
  async restore(): Promise<LoadedSession | null> {
    const userId = this.#userId;
    try {
      const loaded = await this.#store.loadSession(userId, this.#sessionDir);
      this.#last = loaded;
      if (loaded) {
        const ms = Math.round(loaded.ms);
        log("info", "Session restored from database", { userId, tier: loaded.tier, bytes: loaded.sizeBytes, ms });
        this.#tried = true;
        this.#event("restore", { bytes: loaded.sizeBytes, ms, tier: loaded.tier });
      }
      return loaded;
    } catch (error) {
      log("error", "Failed to restore session from database", { userId, code: errorCode(error), error: String(error) });
      this.#tried = true;
      this.#event("restore_failed", { code: errorCode(error) });
      return null;
    }
  }

  /** Once per start that restored a session: did it reach ready without a QR? */
  recordOutcome(success: boolean, reason: string): void {
    if (!this.#tried || this.#outcomeRecorded) return;
    this.#outcomeRecorded = true;
    this.#event("restore_outcome", { success, reason });
  }
}
