import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";

import { isOperator, OPERATOR_SESSION_MS, operatorSigningKey, signInOperator } from "../../../src/lib/auth/operator-auth";
import { InvalidCredentialsError } from "../../../src/lib/auth/user-accounts";
import { testPocketBase } from "../../helpers/pocketbase";

describe("the operator sign-in of /status", () => {
  const statusToken = randomBytes(24).toString("hex");
  const signingKey = operatorSigningKey(randomBytes(32).toString("base64"));
  const options = () => ({ url: testPocketBase().url, statusToken, signingKey });
  const decoded = (cookie: string) => Buffer.from(cookie.split(".")[0]!, "base64url").toString("utf8");

  afterEach(() => {
    vi.useRealTimers();
  });

  it("signs a token sign-in into a cookie that holds no secret and opens the page", async () => {
    const cookie = await signInOperator(options(), { token: statusToken });
    expect(cookie).not.toContain(statusToken);
    expect(decoded(cookie)).not.toContain(statusToken);
    expect(isOperator(cookie, { statusToken, signingKey })).toBe(true);
  });

  it("refuses a wrong token, a tampered cookie, another key, a rotated token and an expired sign-in", async () => {
    await expect(signInOperator(options(), { token: "not-the-status-token" })).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(signInOperator({ ...options(), statusToken: undefined }, { token: "anything-at-all-here" })).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );

    const cookie = await signInOperator(options(), { token: statusToken });
    const [payload, signature] = cookie.split(".");
    const forged = Buffer.from(decoded(cookie).replace('"kind":"token"', '"kind":"superuser"')).toString("base64url");
    expect(isOperator(`${forged}.${signature}`, { statusToken, signingKey })).toBe(false);
    expect(isOperator(`${payload}.${signature}x`, { statusToken, signingKey })).toBe(false);
    expect(isOperator(cookie, { statusToken, signingKey: operatorSigningKey(randomBytes(32).toString("base64")) })).toBe(false);
    expect(isOperator(cookie, { statusToken: randomBytes(24).toString("hex"), signingKey })).toBe(false);
    expect(isOperator(undefined, { statusToken, signingKey })).toBe(false);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + OPERATOR_SESSION_MS + 1000);
    expect(isOperator(cookie, { statusToken, signingKey })).toBe(false);
  });

  it("lets a PocketBase superuser in, and nobody with a wrong password", async () => {
    const { adminEmail, adminPassword } = testPocketBase();
    const cookie = await signInOperator(options(), { email: adminEmail, password: adminPassword });
    expect(decoded(cookie)).not.toContain(adminPassword);
    expect(isOperator(cookie, { statusToken: undefined, signingKey })).toBe(true);
    await expect(signInOperator(options(), { email: adminEmail, password: "wrong-password" })).rejects.toBeInstanceOf(InvalidCredentialsError);
  });
});
