import { beforeAll, describe, expect, it } from "vitest";

import { revokeUserTokens } from "../../../src/lib/auth/user-accounts";
import { authenticateUserOrThrow, UnauthorizedError } from "../../../src/lib/pocketbase/user-client";
import { adminClient, createTestUser, testPocketBase, type TestUser } from "../../helpers/pocketbase";

describe("the per-request user client", () => {
  let user: TestUser;

  beforeAll(async () => {
    user = await createTestUser(await adminClient());
  });

  it("verifies a user's token and acts as that user", async () => {
    const { pb, user: record } = await authenticateUserOrThrow(testPocketBase().url, user.token);
    expect(record.id).toBe(user.record.id);
    expect(pb.authStore.isSuperuser).toBe(false);
  });

  it.each([
    ["an empty token", ""],
    ["a garbage token", "not-a-token"],
  ])("refuses %s with UnauthorizedError", async (_label, token) => {
    await expect(authenticateUserOrThrow(testPocketBase().url, token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it("accepts a token a superuser minted for the user (impersonate: a backend acting for its users) until the user's tokens are revoked", async () => {
    const admin = await adminClient();
    const other = await createTestUser(admin);
    const impersonated = await admin.collection("users").impersonate(other.record.id, 3600);
    const { user: record } = await authenticateUserOrThrow(testPocketBase().url, impersonated.authStore.token);
    expect(record.id).toBe(other.record.id);

    await revokeUserTokens(admin, other.record.id); // "Sign out everywhere"
    await expect(authenticateUserOrThrow(testPocketBase().url, impersonated.authStore.token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it("refuses a superuser's token: it is not a user", async () => {
    const admin = await adminClient();
    await expect(authenticateUserOrThrow(testPocketBase().url, admin.authStore.token)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });
});
