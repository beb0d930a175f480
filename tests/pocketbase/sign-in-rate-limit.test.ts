import { randomBytes } from "node:crypto";
import PocketBase, { ClientResponseError } from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { operatorSigningKey, signInOperator } from "../../src/lib/auth/operator-auth";
import { InvalidCredentialsError, SignInRefusedError, signInUser, signUpUser } from "../../src/lib/auth/user-accounts";
import { createTestUser, startIsolatedPocketBase } from "../helpers/pocketbase";

/**
 * The HTTP status of a password sign-in to `collection` as any client on the internet
 * would try it: as a guest, or (`token`) with a token of its own, a user's who signed up.
 */
async function guestSignIn(url: string, collection: string, email: string, password: string, token?: string): Promise<number> {
  try {
    await new PocketBase(url).collection(collection).authWithPassword(email, password, { requestKey: null, headers: token ? { Authorization: token } : {} });
    return 200;
  } catch (error) {
    return (error as ClientResponseError).status;
  }
}

/** Wrong guesses until PocketBase answers 429 (at most `max`); the statuses it gave. */
async function guessUntilLimited(url: string, collection: string, email: string, token?: string, max = 40): Promise<number[]> {
  const statuses: number[] = [];
  while (statuses.length < max && statuses.at(-1) !== 429) statuses.push(await guestSignIn(url, collection, email, "a-wrong-password", token));
  return statuses;
}

describe("PocketBase's limit on password sign-ins (migration 1739740000)", () => {
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  beforeAll(async () => {
    // Loopback counts here, as any client's address does in production.
    pocketbase = await startIsolatedPocketBase(undefined, { rateLimitLoopback: true });
    admin = await pocketbase.admin();
  });
  afterAll(async () => {
    await pocketbase?.dispose();
  });

  it("stops guessing a user's password after 30 tries a minute, also with a token of one's own, but never the app's own sign-ins", async () => {
    const user = await createTestUser(admin); // (one guest sign-in: it counts)
    const guesser = await createTestUser(admin);
    const statuses = await guessUntilLimited(pocketbase.url, "users", user.email, guesser.token);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, -1).every((status) => status === 400)).toBe(true);
    expect(statuses.length).toBeGreaterThanOrEqual(25);
    expect(statuses.length).toBeLessThanOrEqual(31);
    // The right password too, from that address, for now.
    expect(await guestSignIn(pocketbase.url, "users", user.email, user.password)).toBe(429);
    expect(await guestSignIn(pocketbase.url, "users", user.email, user.password, guesser.token)).toBe(429);

    // The dashboard's sign-in goes with the backend's superuser token: not limited (the app throttles it).
    const asApp = { Authorization: admin.authStore.token };
    expect(await signInUser(pocketbase.url, user.email, user.password, asApp)).toEqual(expect.any(String));
    await expect(signInUser(pocketbase.url, user.email, "a-wrong-password", asApp)).rejects.toBeInstanceOf(InvalidCredentialsError);
    // The token is the user's own.
    const token = await signInUser(pocketbase.url, user.email, user.password, asApp);
    const asUser = new PocketBase(pocketbase.url);
    asUser.authStore.save(token);
    expect((await asUser.collection("users").authRefresh()).record.id).toBe(user.record.id);
    // The dashboard's sign-up signs in the same way.
    const newcomer = `newcomer-${randomBytes(4).toString("hex")}@wavault.test`;
    expect(await signUpUser(pocketbase.url, newcomer, "newcomer-password-1", asApp)).toEqual(expect.any(String));
  });

  it("keeps the users collection's auth rule for the app's sign-ins, which skip it as a superuser's", async () => {
    // (Made by the backend: a guest's sign-in here is over its limit by now.)
    const user = { email: `unverified-${randomBytes(4).toString("hex")}@wavault.test`, password: "unverified-password-1" };
    const record = await admin.collection("users").create({ ...user, passwordConfirm: user.password, verified: false });
    const asApp = { Authorization: admin.authStore.token };
    await admin.collections.update("users", { authRule: "verified = true" }); // an operator's rule
    try {
      await expect(signInUser(pocketbase.url, user.email, user.password, asApp)).rejects.toBeInstanceOf(SignInRefusedError);
      await admin.collection("users").update(record.id, { verified: true });
      expect(await signInUser(pocketbase.url, user.email, user.password, asApp)).toEqual(expect.any(String));
    } finally {
      await admin.collections.update("users", { authRule: "" });
    }
  });

  it("stops guessing a superuser's password likewise, but not /status's sign-in through the app", async () => {
    const statuses = await guessUntilLimited(pocketbase.url, "_superusers", pocketbase.adminEmail);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.length).toBeGreaterThanOrEqual(25);
    expect(await guestSignIn(pocketbase.url, "_superusers", pocketbase.adminEmail, pocketbase.adminPassword)).toBe(429);

    const options = {
      url: pocketbase.url,
      statusToken: undefined,
      signingKey: operatorSigningKey(randomBytes(32).toString("base64")),
      headers: { Authorization: admin.authStore.token },
    };
    expect(await signInOperator(options, { email: pocketbase.adminEmail, password: pocketbase.adminPassword })).toEqual(expect.any(String));
  });

  it("limits nothing else: a user's own requests and the backend's go on", async () => {
    const settings = await admin.settings.getAll();
    expect(settings.rateLimits).toMatchObject({ enabled: true, excludedIPs: [] });
    expect(settings.rateLimits.rules.map((rule: { label: string }) => rule.label).sort()).toEqual(["_superusers:authWithPassword", "users:authWithPassword"]);
  });
});
