/** What a ReadyDeadline asks of its channel. */
export interface ReadyDeadlineHooks {
  /** Ready meanwhile, or ending anyway: nothing to do. */
  over(): boolean;
  /** Whether the phone has scanned and the first sync is under way (see linkInProgress). */
  linking(): Promise<boolean>;
  /** Not ready in time: stop the channel. */
  giveUp(limitMs: number): void;
}

/**
 * A channel's time to reach ready (WhatsAppChannelOptions.readyWithinMs), from
 * `start()` until `clear()`. When it runs out, a channel whose phone has just scanned
 * gets one more budget (whatsapp-web.js says nothing until the first sync ends, and
 * cutting that short loses the new link); otherwise it is given up. Without a limit it
 * never runs out. The timer does not keep the process alive.
 */
export class ReadyDeadline {
  readonly #limitMs: number | undefined;
  readonly #hooks: ReadyDeadlineHooks;
  #timer: NodeJS.Timeout | null = null;
  #extended = false;
  #checking = false;

  constructor(limitMs: number | undefined, hooks: ReadyDeadlineHooks) {
    this.#limitMs = limitMs;
    this.#hooks = hooks;
  }

  /** Whether it gave a channel whose phone had scanned its one more budget, or is finding out whether to. */
  get extended(): boolean {
    return this.#extended || this.#checking;
  }

  start(): void {
    const limitMs = this.#limitMs;
    if (!limitMs || this.#timer) return;
    this.#timer = setTimeout(() => void this.#runOut(limitMs), limitMs);
    this.#timer.unref();
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #runOut(limitMs: number): Promise<void> {
    this.#timer = null;
    if (this.#hooks.over()) return;
    if (!this.#extended) {
      this.#checking = true;
      const linking = await this.#hooks.linking().finally(() => (this.#checking = false));
      if (linking) {
        this.#extended = true;
        this.start();
        return;
      }
    }
    if (!this.#hooks.over()) this.#hooks.giveUp(limitMs);
  }
}
