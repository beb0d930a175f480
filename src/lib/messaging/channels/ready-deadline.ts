/**
 * A channel's time to reach ready (WhatsAppChannelOptions.readyWithinMs): `expire` is
 * called once if `clear()` has not come within `limitMs` of `start()`. Without a limit
 * it never fires. The timer does not keep the process alive.
 */
export class ReadyDeadline {
  readonly #limitMs: number | undefined;
  readonly #expire: (limitMs: number) => void;
  #timer: NodeJS.Timeout | null = null;

  constructor(limitMs: number | undefined, expire: (limitMs: number) => void) {
    this.#limitMs = limitMs;
    this.#expire = expire;
  }

  start(): void {
    const limitMs = this.#limitMs;
    if (!limitMs || this.#timer) return;
    this.#timer = setTimeout(() => this.#expire(limitMs), limitMs);
    this.#timer.unref();
  }

  /** A fresh budget from now (a step forward: the phone scanned, say). */
  restart(): void {
    this.clear();
    this.start();
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
