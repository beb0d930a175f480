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
  /**
   * Keys remembered at most, so a flood of emails cannot grow memory: past it the oldest
   * that is not locked goes first, so a flood cannot wipe a lock out.
   */
  maxKeys: number;
  /** Whether a success forgets the key's failures (default true). */
  forgetOnSuccess?: boolean;
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
      if (this.#options.forgetOnSuccess !== false) this.#failures.delete(key);
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
    if (this.#failures.size > this.#options.maxKeys) this.#failures.delete(this.#evictable(key));
  }

  /**
   * The oldest key (by latest failure) other than `recorded` (the one just counted, which
   * must keep its count) that is not locked now; the oldest other one when all are.
   */
  #evictable(recorded: string): string {
    const since = this.#now() - this.#options.windowMs;
    let oldest: string | undefined;
    for (const [key, failures] of this.#failures) {
      if (key === recorded) continue;
      oldest ??= key;
      if (failures.filter((at) => at > since).length < this.#options.maxFailures) return key;
    }
    return oldest!;
  }
}

export interface SignInThrottlesOptions {
  /** Failed sign-ins allowed for an account from one address, or from anywhere when addresses are unknown. */
  perAccount: number;
  /** Failed sign-ins allowed for an account from all addresses together, when addresses are known. */
  perAccountAllAddresses: number;
  /** Failed sign-ins allowed from one address over all accounts, when addresses are known. */
  perAddressAllAccounts: number;
  windowMs: number;
  maxKeys: number;
  /** How long an address an account signed in from stays one its failures elsewhere do not lock. */
  trustMs: number;
  /** Such addresses remembered at most (in memory, each instance its own; the oldest go first). */
  maxTrusted: number;
}

/**
 * The dashboard's sign-in throttle. Without the client's address (no
 * CLIENT_ADDRESS_HEADER) a guesser cannot be told from the account's owner: `perAccount`
 * failures lock the account for everyone, and anyone can do that to any email. With it:
 *   - `perAccount` failures lock that address out of that account only;
 *   - a guesser spread over many addresses is held up by the account's total
 *     (`perAccountAllAddresses`), which spares the addresses the account signed in from
 *     within `trustMs` (only someone with the password makes one; remembered in memory,
 *     at most `maxTrusted`: best effort, lost on a restart) and is not reset by a
 *     success, so signing in to an account does not buy a guesser a fresh budget;
 *   - one address is held up over all accounts (`perAddressAllAccounts`), so it cannot
 *     flood the counters with made-up emails.
 */
export class SignInThrottles {
  readonly #options: SignInThrottlesOptions;
  readonly #now: () => number;
  readonly #perAccount: SignInThrottle;
  readonly #perAccountAllAddresses: SignInThrottle;
  readonly #perAddressAllAccounts: SignInThrottle;
  /** "account from address" → when it last signed in, oldest first. */
  readonly #trusted = new Map<string, number>();

  constructor(options: SignInThrottlesOptions, now: () => number = Date.now) {
    const { windowMs, maxKeys } = options;
    this.#options = options;
    this.#now = now;
    this.#perAccount = new SignInThrottle({ maxFailures: options.perAccount, windowMs, maxKeys }, now);
    const kept = { windowMs, maxKeys, forgetOnSuccess: false };
    this.#perAccountAllAddresses = new SignInThrottle({ maxFailures: options.perAccountAllAddresses, ...kept }, now);
    this.#perAddressAllAccounts = new SignInThrottle({ maxFailures: options.perAddressAllAccounts, ...kept }, now);
  }

  /**
   * Runs `signIn` for `account` from `address` (null: unknown; see clientAddressOf)
   * unless one of the limits above is reached (see SignInThrottle.attempt).
   * @throws TooManySignInsError, and whatever `signIn` throws
   */
  attempt<T>(account: string, address: string | null, signIn: () => Promise<T>): Promise<T> {
    if (!address) return this.#perAccount.attempt(account, signIn);
    const pair = `${account} from ${address}`;
    const fromThisAddress = () =>
      this.#perAddressAllAccounts.attempt(address, () =>
        this.#perAccount.attempt(pair, async () => {
          const result = await signIn();
          this.#trust(pair);
          return result;
        }),
      );
    if (this.#isTrusted(pair)) return fromThisAddress();
    return this.#perAccountAllAddresses.attempt(account, fromThisAddress);
  }

  #isTrusted(pair: string): boolean {
    const at = this.#trusted.get(pair);
    if (at === undefined) return false;
    if (this.#now() - at <= this.#options.trustMs) return true;
    this.#trusted.delete(pair);
    return false;
  }

  #trust(pair: string): void {
    this.#trusted.delete(pair); // re-inserted last: the map stays ordered by latest sign-in
    this.#trusted.set(pair, this.#now());
    if (this.#trusted.size > this.#options.maxTrusted) this.#trusted.delete(this.#trusted.keys().next().value!);
  }
}

const holder = globalThis as typeof globalThis & { __wavaultSignInThrottles?: SignInThrottles };

/**
 * This process's throttle for the dashboard's and the operator page's sign-ins, per 15
 * minutes: 10 failures an account from one address (from anywhere, addresses unknown),
 * 100 from all addresses, 50 from one address over all accounts; an address stays
 * trusted for its account 30 days after a sign-in (at most 50,000 remembered, ~5 MB).
 */
export function signInThrottle(): SignInThrottles {
  holder.__wavaultSignInThrottles ??= new SignInThrottles({
    perAccount: 10,
    perAccountAllAddresses: 100,
    perAddressAllAccounts: 50,
    windowMs: 15 * 60 * 1000,
    maxKeys: 10_000,
    trustMs: 30 * 24 * 60 * 60 * 1000,
    maxTrusted: 50_000,
  });
  return holder.__wavaultSignInThrottles;
}
