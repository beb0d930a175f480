import { afterEach, describe, expect, it, vi } from "vitest";

import { VERIFIED_TOKEN_TTL_MS, verifyUserTokenOrThrow } from "../../../src/lib/auth/user-token-verifier";
import { UnauthorizedError } from "../../../src/lib/pocketbase/user-client";
import { adminClient, createTestUser, testPocketBase } from "../../helpers/pocketbase";

describe("verifyUserTokenOrThrow", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("asks PocketBase once, trusts the answer for a short while, then asks again", async () => {
    const admin = await adminClient();
    const user = await createTestUser(admin);
    const { url } = testPocketBase();
    expect((await verifyUserTokenOrThrow(url, user.token)).id).toBe(user.record.id);

    // The user is deleted: PocketBase would refuse the token now, the cache does not yet…
    await admin.collection("users").delete(user.record.id);
    expect((await verifyUserTokenOrThrow(url, user.token)).id).toBe(user.record.id);

    // …and no longer once the trust has lapsed.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + VERIFIED_TOKEN_TTL_MS + 1);
    await expect(verifyUserTokenOrThrow(url, user.token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it("refuses what cannot be a token without asking PocketBase, which it would report as unreachable", async () => {
    const { url } = testPocketBase();
    // A cookie decodes to anything: a line break, a character above U+00FF, a space.
    for (const token of ["a\nb", "\u0100", "two words", ""]) {
      await expect(verifyUserTokenOrThrow(url, token)).rejects.toBeInstanceOf(UnauthorizedError);
    }
    // Refused before any request: even with PocketBase nowhere to be found.
    await expect(verifyUserTokenOrThrow("http://127.0.0.1:9", "a\nb")).rejects.toBeInstanceOf(UnauthorizedError);
  });
});
