import { log } from "../log";
import type { ConnectionManager } from "./connection-manager";
import { loadShare, type InstanceRegistry, type InstanceStanding } from "./instance-registry";
import { errorCode } from "./session-store-errors";

export interface ResumeShareOptions {
  manager: ConnectionManager;
  /** Without one, this instance takes every waiting session it has room for. */
  registry?: InstanceRegistry;
  /** A session left to a less loaded instance for longer than this is taken anyway. */
  patienceMs: number;
  /** Failed starts in a row count as "failing" only while the last is this recent. */
  failingWindowMs: number;
}

/** One resume round's decisions (see ResumeShare.round). */
export interface ShareRound {
  /** Whether this instance starts the user's waiting session now. */
  take(userId: string): Promise<boolean>;
  /** The round is over: sessions it did not leave to others are forgotten. */
  end(): void;
}

/** A change of room is looked at this long after it (several at once: one look). */
const ROOM_CHECK_MS = 250;

/** After this many failed starts in a row here, waiting sessions go to other instances first. */
const FAILING_AFTER = 3;

/**
 * Which waiting sessions this instance resumes when several instances do: it announces
 * itself in the registry (its cap, and whether it takes more sessions now: room, and
 * starts that do not keep failing), and before each start checks that no other live
 * instance taking sessions runs fewer for its cap (its live leases against its
 * MAX_WHATSAPP_CONNECTIONS; on a tie both take). If one does, the session is left to it
 * — for at most `patienceMs`, then taken anyway (that one may be stuck). While this
 * instance's starts keep failing, it leaves every session to any instance that takes
 * them. When the registry cannot be read it takes them: the spread is a preference, the
 * lease claim is what keeps a session from starting twice.
 */
export class ResumeShare {
  readonly #options: ResumeShareOptions;
  #failedInARow = 0;
  #lastFailureAt = 0;
  /** Waiting sessions left to less loaded instances, and since when (this process's clock). */
  #leftSince = new Map<string, number>();
  #warnedAt = 0;
  /** The unsubscribe from the manager's room changes, and the look at them to come. */
  #stopListening: (() => void) | null = null;
  #roomCheck: NodeJS.Timeout | null = null;

  constructor(options: ResumeShareOptions) {
    this.#options = options;
  }

  /**
   * Announces this instance until `leave()`; `stopped` says when it takes no more sessions.
   * A change of its standing (room freed or taken, for sessions or new links) is announced
   * at once, not at the next heartbeat.
   */
  announce(stopped: () => boolean): void {
    const { registry, manager } = this.#options;
    if (!registry) return;
    registry.start(() => this.#standing(stopped()));
    // At most one look per ROOM_CHECK_MS: a standing measures the clients' memory, and a
    // deploy's resumes change many clients' status at once.
    this.#stopListening ??= manager.onRoomChange(() => {
      this.#roomCheck ??= setTimeout(() => {
        this.#roomCheck = null;
        try {
          const now = this.#standing(stopped());
          const was = registry.announced;
          if (!was || now.accepting !== was.accepting || now.acceptingNewLinks !== was.acceptingNewLinks) void registry.beat();
        } catch (error) {
          log("warn", "Could not tell whether this instance's room changed", { error: String(error) });
        }
      }, ROOM_CHECK_MS).unref();
    });
  }

  /** No other instance waits for this one any more (its record is deleted). */
  async leave(): Promise<void> {
    this.#stopListening?.();
    this.#stopListening = null;
    clearTimeout(this.#roomCheck ?? undefined);
    this.#roomCheck = null;
    await this.#options.registry?.leave();
  }

  /** This instance just found itself full: the others hear it now, not at the next heartbeat. */
  full(): void {
    void this.#options.registry?.beat();
  }

  /** Counts a resume start here that failed after its claim (or ended before ready); one that worked ends the run. */
  countStart(failed: boolean): void {
    const wasFailing = this.#failing();
    this.#failedInARow = failed ? this.#failedInARow + 1 : 0;
    if (failed) this.#lastFailureAt = Date.now();
    if (this.#failing() !== wasFailing) void this.#options.registry?.beat();
  }

  round(): ShareRound {
    const leftSince = new Map<string, number>();
    let myTurn: Promise<boolean> | null = null; // asked when needed, again after each start
    return {
      take: async (userId) => {
        const since = this.#leftSince.get(userId) ?? Date.now();
        if (Date.now() - since <= this.#options.patienceMs && !(await (myTurn ??= this.#isMyTurn()))) {
          leftSince.set(userId, since);
          return false;
        }
        myTurn = null; // a start changes the comparison
        return true;
      },
      end: () => {
        this.#leftSince = leftSince;
      },
    };
  }

  #standing(stopped: boolean): InstanceStanding {
    const { manager } = this.#options;
    const accepting = !stopped && manager.hasRoom() && !this.#failing();
    return { accepting, acceptingNewLinks: accepting && manager.hasRoomToWaitForQr(), maxConnections: manager.maxConnections };
  }

  #failing(): boolean {
    return this.#failedInARow >= FAILING_AFTER && Date.now() - this.#lastFailureAt < this.#options.failingWindowMs;
  }

  async #isMyTurn(): Promise<boolean> {
    const { registry, manager } = this.#options;
    if (!registry) return true;
    let peers;
    try {
      peers = await registry.peers();
    } catch (error) {
      if (Date.now() - this.#warnedAt > 60_000) {
        this.#warnedAt = Date.now();
        log("warn", "Could not read the other instances; resuming without them", { code: errorCode(error) });
      }
      return true;
    }
    const clients = manager.list().length;
    const failing = this.#failing();
    const mine = loadShare({ clients, maxConnections: manager.maxConnections });
    const other = peers.find((peer) => failing || loadShare(peer) < mine);
    if (other) log("info", "Leaving waiting sessions to another instance", { instance: other.instanceId, itsClients: other.clients, clients, failing });
    return !other;
  }
}
