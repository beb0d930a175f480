import { describe, expect, it } from "vitest";

import { revokeUserTokens, signInUser } from "../../../src/lib/auth/user-accounts";
import { verifyUserTokenOrThrow } from "../../../src/lib/auth/user-token-verifier";
import { SessionStoreError } from "../../../src/lib/messaging/session-store-errors";
import { authenticateUserOrThrow, UnauthorizedError } from "../../../src/lib/pocketbase/user-client";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { adminClient, createTestUser, testPocketBase } from "../../helpers/pocketbase";

describe("revokeUserTokens", () => {
  it("invalidates every token the user has, at once even where one was verified moments ago, and no one else's", async () => {
    const admin = await adminClient();
    const { url } = testPocketBase();
    const user = await createTestUser(admin);
    const other = await createTestUser(admin);
    const secondToken = await signInUser(url, user.email, user.password); // another browser, or an API client
    // This process has just verified both (and would trust them for a while without asking again).
    await verifyUserTokenOrThrow(url, user.token);
    await verifyUserTokenOrThrow(url, secondToken);

    await revokeUserTokens(admin, user.record.id);

    for (const token of [user.token, secondToken]) {
      await expect(authenticateUserOrThrow(url, token)).rejects.toBeInstanceOf(UnauthorizedError);
      await expect(verifyUserTokenOrThrow(url, token)).rejects.toBeInstanceOf(UnauthorizedError);
    }
    expect((await verifyUserTokenOrThrow(url, other.token)).id).toBe(other.record.id);
    // The password still works: a new sign-in gets a token that is accepted.
    const fresh = await signInUser(url, user.email, user.password);
    expect((await verifyUserTokenOrThrow(url, fresh)).id).toBe(user.record.id);
  });

  it("is not undone by a check PocketBase answered before the revocation that returns after it", async () => {
    const admin = await adminClient();
    const user = await createTestUser(admin);
    const proxy = await startPartitionProxy(testPocketBase().url);
    try {
      proxy.slowResponses("POST /api/collections/users/auth-refresh", 1_000);
      const checking = verifyUserTokenOrThrow(proxy.url, user.token);
      await expect.poll(() => proxy.heldResponses, { timeout: 5_000 }).toBe(1); // PocketBase has said yes…
      await revokeUserTokens(admin, user.record.id); // …and then the token is revoked, before the yes arrives
      await expect(checking).rejects.toBeInstanceOf(UnauthorizedError);
      await expect(verifyUserTokenOrThrow(proxy.url, user.token)).rejects.toBeInstanceOf(UnauthorizedError);
    } finally {
      await proxy.close();
    }
  });

  it("fails with a typed error for a user that does not exist", async () => {
    await expect(revokeUserTokens(await adminClient(), "nosuchuser00000")).rejects.toBeInstanceOf(SessionStoreError);
  });
});
