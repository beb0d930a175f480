import { randomBytes, randomUUID } from "node:crypto";
import type PocketBase from "pocketbase";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { isOperator, OPERATOR_SESSION_MS, operatorSigningKey, signInOperator, superuserVersionVia } from "../../../src/lib/auth/operator-auth";
import { InvalidCredentialsError } from "../../../src/lib/auth/user-accounts";
import { adminClient, testPocketBase } from "../../helpers/pocketbase";

describe("the operator sign-in of /status", () => {
  const statusToken = randomBytes(24).toString("hex");
  const signingKey = operatorSigningKey(randomBytes(32).toString("base64"));
  const options = () => ({ url: testPocketBase().url, statusToken, signingKey });
  const decoded = (cookie: string) => Buffer.from(cookie.split(".")[0]!, "base64url").toString("utf8");
  let admin: PocketBase;
  /** How the page checks: PocketBase asked with the backend's superuser client. */
  const check = (cookie: string | undefined, token: string | undefined = statusToken, key = signingKey) =>
    isOperator(cookie, { statusToken: token, signingKey: key, superuserVersion: superuserVersionVia(async () => admin) });

  beforeAll(async () => {
    admin = await adminClient();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("signs a token sign-in into a cookie that holds no secret and opens the page", async () => {
    const cookie = await signInOperator(options(), { token: statusToken });
    expect(cookie).not.toContain(statusToken);
    expect(decoded(cookie)).not.toContain(statusToken);
    expect(await check(cookie)).toBe(true);
  });

  it("refuses a wrong token, a tampered cookie, another key, a rotated token and an expired sign-in", async () => {
    await expect(signInOperator(options(), { token: "not-the-status-token" })).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(signInOperator({ ...options(), statusToken: undefined }, { token: "anything-at-all-here" })).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );

    const cookie = await signInOperator(options(), { token: statusToken });
    const [payload, signature] = cookie.split(".");
    const forged = Buffer.from(decoded(cookie).replace('"kind":"token"', '"kind":"superuser"')).toString("base64url");
    expect(await check(`${forged}.${signature}`)).toBe(false);
    expect(await check(`${payload}.${signature}x`)).toBe(false);
    expect(await check(cookie, statusToken, operatorSigningKey(randomBytes(32).toString("base64")))).toBe(false);
    expect(await check(cookie, randomBytes(24).toString("hex"))).toBe(false);
    expect(await check(undefined)).toBe(false);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + OPERATOR_SESSION_MS + 1000);
    expect(await check(cookie)).toBe(false);
  });

  it("lets a PocketBase superuser in, and nobody with a wrong password", async () => {
    const { adminEmail, adminPassword } = testPocketBase();
    const cookie = await signInOperator(options(), { email: adminEmail, password: adminPassword });
    expect(decoded(cookie)).not.toContain(adminPassword);
    expect(await check(cookie, undefined)).toBe(true);
    await expect(signInOperator(options(), { email: adminEmail, password: "wrong-password" })).rejects.toBeInstanceOf(InvalidCredentialsError);
  });

  it("ends a superuser's sign-in once that superuser's password changes or the superuser is deleted, and while PocketBase cannot say", async () => {
    const email = `operator-${randomUUID()}@wavault.test`;
    const password = `pw-${randomUUID()}`;
    const superuser = await admin.collection("_superusers").create({ email, password, passwordConfirm: password });
    const before = await signInOperator(options(), { email, password });
    expect(await check(before)).toBe(true);
    // PocketBase cannot be asked: only the status token opens the page then.
    const unreachable = { statusToken, signingKey, superuserVersion: async () => Promise.reject(new Error("PocketBase is down")) };
    expect(await isOperator(before, unreachable)).toBe(false);

    await new Promise((resolve) => setTimeout(resolve, 5)); // a later `updated`
    const changed = `pw-${randomUUID()}`;
    await admin.collection("_superusers").update(superuser.id, { password: changed, passwordConfirm: changed });
    expect(await check(before)).toBe(false);

    const after = await signInOperator(options(), { email, password: changed });
    expect(await check(after)).toBe(true);
    await admin.collection("_superusers").delete(superuser.id);
    expect(await check(after)).toBe(false);
  });
});
