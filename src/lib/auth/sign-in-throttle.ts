import { errorCode } from "../messaging/session-store-errors";

/** Too many sign-ins failed for this key lately; the next may be tried after `retryAfterMs`. */
export class TooManySignInsError extends Error {
  readonly code = "too_many_sign_ins";
  constructor(readonly retryAfterMs: number) {
    super(`Too many failed sign-ins; try again in ${Math.max(1, Math.ceil(retryAfterMs / 60_000))} min.`);
    this.name = "TooManySignInsError";
  }
}

export interface SignInThrottleOptions {
  /** Failed sign-ins allowed per key within `windowMs`; the next is refused without asking PocketBase. */
  maxFailures: number;
  windowMs: number;
  /** Keys remembered at most (the oldest go first), so a flood of emails cannot grow memory. */
  maxKeys: number;
}

/**
 * Counts failed sign-ins per key (an email, or the operator page's superuser sign-in)
 * over a sliding window. Every sign-in reaches PocketBase from this server's address,
 * so PocketBase's own per-IP limits cannot tell a guesser from everyone else: this is
 * where password guessing is slowed. Per process: each instance counts its own.
 */
export class SignInThrottle {
  readonly #options: SignInThrottleOptions;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();
  /** Attempts per key whose answer has not come yet (as many as run at once: never more than maxFailures a key). */
  readonly #underWay = new Map<string, number>();

  constructor(options: SignInThrottleOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /**
   * Runs `signIn` unless `key` has failed too often lately, counting the attempts still
   * under way as failures (so sign-ins sent all at once cannot all get through before
   * the first has failed); an InvalidCredentialsError counts as a failure, a success
   * forgets the key's failures.
   * @throws TooManySignInsError, and whatever `signIn` throws
   */
  async attempt<T>(key: string, signIn: () => Promise<T>): Promise<T> {
    const recent = this.#recent(key);
    const underWay = this.#underWay.get(key) ?? 0;
    if (recent.length + underWay >= this.#options.maxFailures) {
      // Held back by attempts under way only: they end within seconds.
      const retryAfterMs = recent.length >= this.#options.maxFailures ? recent[0]! + this.#options.windowMs - this.#now() : 1_000;
      throw new TooManySignInsError(retryAfterMs);
    }
    this.#underWay.set(key, underWay + 1);
    try {
      const result = await signIn();
      this.#failures.delete(key);
      return result;
    } catch (error) {
      // By code: this throttle lives on globalThis, and the caller's bundle may have its own copy of the class.
      if (errorCode(error) === "invalid_credentials") this.#fail(key);
      throw error;
    } finally {
      const left = (this.#underWay.get(key) ?? 1) - 1;
      if (left > 0) this.#underWay.set(key, left);
      else this.#underWay.delete(key);
    }
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#options.windowMs;
    const recent = (this.#failures.get(key) ?? []).filter((at) => at > since);
    if (recent.length) this.#failures.set(key, recent);
    else this.#failures.delete(key);
    return recent;
  }

  #fail(key: string): void {
    const failures = this.#recent(key);
    this.#failures.delete(key); // re-inserted last: the map stays ordered by latest failure
    this.#failures.set(key, [...failures, this.#now()]);
    while (this.#failures.size > this.#options.maxKeys) this.#failures.delete(this.#failures.keys().next().value!);
  }
}

export interface SignInThrottlesOptions {
  /** Failed sign-ins allowed for an account from one address (or, addresses unknown, from anywhere) within `windowMs`. */
  perAddress: number;
  /** Failed sign-ins allowed for an account from all addresses together within `windowMs`, when addresses are known. */
  perAccount: number;
  windowMs: number;
  maxKeys: number;
}

/**
 * The sign-in throttle of the dashboard and the operator page. Without the client's
 * address (no CLIENT_ADDRESS_HEADER) a guesser cannot be told from the account's owner:
 * `perAddress` failures lock the account for everyone, anyone can do that to any email.
 * With it, they lock that address out of the account only, and a guesser spread over
 * many addresses is held up by the account's total (`perAccount`).
 */
export class SignInThrottles {
  readonly #perAddress: SignInThrottle;
  readonly #perAccount: SignInThrottle;

  constructor(options: SignInThrottlesOptions, now: () => number = Date.now) {
    const { windowMs, maxKeys } = options;
    this.#perAddress = new SignInThrottle({ maxFailures: options.perAddress, windowMs, maxKeys }, now);
    this.#perAccount = new SignInThrottle({ maxFailures: options.perAccount, windowMs, maxKeys }, now);
  }

  /**
   * Runs `signIn` for `account` from `address` (null: unknown) unless either has failed
   * too often lately (see SignInThrottle.attempt).
   * @throws TooManySignInsError, and whatever `signIn` throws
   */
  attempt<T>(account: string, address: string | null, signIn: () => Promise<T>): Promise<T> {
    if (!address) return this.#perAddress.attempt(account, signIn);
    return this.#perAccount.attempt(account, () => this.#perAddress.attempt(`${account} from ${address}`, signIn));
  }
}

const holder = globalThis as typeof globalThis & { __wavaultSignInThrottles?: SignInThrottles };

/**
 * This process's throttle for the dashboard's and the operator page's sign-ins: 10
 * failures an account from one address (from anywhere, when addresses are unknown), 100
 * from all addresses, per 15 minutes.
 */
export function signInThrottle(): SignInThrottles {
  holder.__wavaultSignInThrottles ??= new SignInThrottles({ perAddress: 10, perAccount: 100, windowMs: 15 * 60 * 1000, maxKeys: 10_000 });
  return holder.__wavaultSignInThrottles;
}
