import { describe, expect, it } from "vitest";

import { SignInThrottle, SignInThrottles, TooManySignInsError } from "../../../src/lib/auth/sign-in-throttle";
import { InvalidCredentialsError } from "../../../src/lib/auth/user-accounts";

describe("SignInThrottle", () => {
  let clock = 0;
  const throttle = (maxKeys = 100) => new SignInThrottle({ maxFailures: 3, windowMs: 60_000, maxKeys }, () => clock);
  const fail = async () => {
    throw new InvalidCredentialsError();
  };
  let calls = 0;
  const succeed = async () => {
    calls += 1;
    return "token";
  };

  it("refuses a key after too many failures within the window, without trying, until the oldest one ages out", async () => {
    clock = 0;
    const limiter = throttle();
    for (let i = 0; i < 3; i++) {
      clock += 1000;
      await expect(limiter.attempt("a@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    }
    calls = 0;
    const refused = limiter.attempt("a@x", succeed);
    await expect(refused).rejects.toBeInstanceOf(TooManySignInsError);
    await expect(refused).rejects.toMatchObject({ retryAfterMs: 58_000 });
    expect(calls).toBe(0);
    expect(await limiter.attempt("b@x", succeed)).toBe("token"); // other keys are not held up

    clock = 61_001; // the first failure is out of the window
    expect(await limiter.attempt("a@x", succeed)).toBe("token");
  });

  it("lets no more sign-ins through at once than failures are allowed: one under way counts until it is known", async () => {
    clock = 0;
    const limiter = throttle();
    let tried = 0;
    const slowFail = async () => {
      tried += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new InvalidCredentialsError();
    };
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.attempt("a@x", slowFail)));
    expect(tried).toBe(3);
    expect(results.filter((result) => result.status === "rejected" && result.reason instanceof TooManySignInsError)).toHaveLength(17);

    // An attempt under way that turns out not to be a guess (PocketBase down) gives its place back.
    clock = 0;
    const other = throttle();
    let release!: () => void;
    const down = new Promise<never>((_, reject) => (release = () => reject(new Error("PocketBase is down"))));
    const pending = [other.attempt("b@x", () => down), other.attempt("b@x", () => down), other.attempt("b@x", () => down)];
    await expect(other.attempt("b@x", succeed)).rejects.toBeInstanceOf(TooManySignInsError);
    release();
    for (const attempt of pending) await expect(attempt).rejects.toThrow("PocketBase is down");
    expect(await other.attempt("b@x", succeed)).toBe("token");

    // A success forgets the failures before it, not those of guesses still under way.
    const third = throttle();
    let answer!: () => void;
    const wrong = new Promise<never>((_, reject) => (answer = () => reject(new InvalidCredentialsError())));
    const guesses = [third.attempt("c@x", () => wrong), third.attempt("c@x", () => wrong)];
    expect(await third.attempt("c@x", succeed)).toBe("token");
    answer();
    for (const guess of guesses) await expect(guess).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(third.attempt("c@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(third.attempt("c@x", succeed)).rejects.toBeInstanceOf(TooManySignInsError);
  });

  it("counts the failures of a sign-in in another bundle, whose copy of the error class is another", async () => {
    // As `next build` gives each page its own copy of the modules, while the throttle is one, on globalThis.
    const otherPath = "../../../src/lib/auth/user-accounts.ts?another-bundle";
    const otherCopy = (await import(/* @vite-ignore */ otherPath)) as typeof import("../../../src/lib/auth/user-accounts");
    expect(otherCopy.InvalidCredentialsError).not.toBe(InvalidCredentialsError);
    clock = 0;
    const limiter = throttle();
    for (let i = 0; i < 3; i++) {
      await expect(limiter.attempt("a@x", async () => Promise.reject(new otherCopy.InvalidCredentialsError()))).rejects.toThrow();
    }
    await expect(limiter.attempt("a@x", succeed)).rejects.toBeInstanceOf(TooManySignInsError);
  });

  it("forgets a key's failures on a success, and does not count other errors", async () => {
    clock = 0;
    const limiter = throttle();
    await expect(limiter.attempt("a@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(limiter.attempt("a@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    await limiter.attempt("a@x", succeed);
    const unreachable = async () => {
      throw new Error("PocketBase is down");
    };
    for (let i = 0; i < 5; i++) await expect(limiter.attempt("a@x", unreachable)).rejects.toThrow("PocketBase is down");
    await expect(limiter.attempt("a@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(limiter.attempt("a@x", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(await limiter.attempt("a@x", succeed)).toBe("token");
  });

  it("remembers at most maxKeys keys, dropping the unlocked one that failed longest ago", async () => {
    clock = 0;
    const limiter = throttle(2);
    for (const key of ["old", "old", "mid", "new"]) await expect(limiter.attempt(key, fail)).rejects.toThrow();
    // "old" was dropped with its 2 failures: 2 more do not lock it.
    for (const key of ["old", "old"]) await expect(limiter.attempt(key, fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(await limiter.attempt("old", succeed)).toBe("token");
  });

  describe("per address (SignInThrottles)", () => {
    const throttles = (maxKeys = 100) =>
      new SignInThrottles({ perAccount: 3, perAccountAllAddresses: 5, perAddressAllAccounts: 8, windowMs: 60_000, maxKeys, trustMs: 600_000, maxTrusted: 100 }, () => clock);
    const failFrom = async (limiter: SignInThrottles, address: string | null, times: number, account = "user:a@x") => {
      for (let i = 0; i < times; i++) await expect(limiter.attempt(account, address, fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
    };
    const refused = (attempt: Promise<unknown>) => expect(attempt).rejects.toBeInstanceOf(TooManySignInsError);

    it("without an address, locks the account for everyone after perAccount failures", async () => {
      clock = 0;
      const limiter = throttles();
      await failFrom(limiter, null, 3);
      await refused(limiter.attempt("user:a@x", null, succeed));
    });

    it("locks out only the address that failed; all addresses together lock the account, except where its owner signed in", async () => {
      clock = 0;
      const limiter = throttles();
      expect(await limiter.attempt("user:a@x", "198.51.100.9", succeed)).toBe("token"); // the owner, at home
      await failFrom(limiter, "203.0.113.7", 3);
      await refused(limiter.attempt("user:a@x", "203.0.113.7", succeed));
      expect(await limiter.attempt("user:a@x", "198.51.100.9", succeed)).toBe("token");

      // More addresses: 5 failures in all (3 above), a success between them
      // notwithstanding, lock the account from any new address…
      await failFrom(limiter, "192.0.2.1", 1);
      expect(await limiter.attempt("user:a@x", "198.51.100.10", succeed)).toBe("token"); // the owner, travelling
      await failFrom(limiter, "192.0.2.2", 1);
      await refused(limiter.attempt("user:a@x", "192.0.2.3", succeed));
      // …but not from where its owner signed in, nor other accounts.
      expect(await limiter.attempt("user:a@x", "198.51.100.9", succeed)).toBe("token");
      expect(await limiter.attempt("user:b@x", "192.0.2.3", succeed)).toBe("token");
    });

    it("holds up one address over all accounts, so it cannot flood the counters with made-up emails", async () => {
      clock = 0;
      const limiter = throttles();
      for (let i = 0; i < 8; i++) await failFrom(limiter, "203.0.113.7", 1, `user:made-up-${i}@x`);
      await refused(limiter.attempt("user:real@x", "203.0.113.7", succeed));
      expect(await limiter.attempt("user:real@x", "198.51.100.9", succeed)).toBe("token");
    });

    it("keeps counting a new key when the counters are full of locks: the oldest lock goes instead", async () => {
      clock = 0;
      const limiter = throttle(2);
      for (const key of ["locked-1", "locked-2"]) {
        for (let i = 0; i < 3; i++) await expect(limiter.attempt(key, fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
      }
      for (let i = 0; i < 3; i++) await expect(limiter.attempt("guessed", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
      await refused(limiter.attempt("guessed", succeed));
      await refused(limiter.attempt("locked-2", succeed));
    });

    it("keeps locks when the counters are full: the oldest unlocked key goes first", async () => {
      clock = 0;
      const limiter = throttle(4);
      for (let i = 0; i < 3; i++) await expect(limiter.attempt("victim", fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
      for (let i = 0; i < 10; i++) await expect(limiter.attempt(`flood-${i}`, fail)).rejects.toBeInstanceOf(InvalidCredentialsError);
      await refused(limiter.attempt("victim", succeed));
    });
  });
});
