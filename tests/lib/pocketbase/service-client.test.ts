import { describe, expect, it } from "vitest";

import { createServiceClient, ServiceAuthError } from "../../../src/lib/pocketbase/service-client";
import { testPocketBase } from "../../helpers/pocketbase";

/** An unsigned token whose `exp` lies in the past: the SDK sees it as expired. */
function expiredToken(): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part({ exp: Math.floor(Date.now() / 1000) - 60 })}.signature`;
}

describe("the superuser service client", () => {
  it("signs in as the superuser", async () => {
    const { url, adminEmail, adminPassword } = testPocketBase();
    const pb = await createServiceClient({ url, email: adminEmail, password: adminPassword });
    expect(pb.authStore.isSuperuser).toBe(true);
    expect((await pb.collections.getOne("whatsapp_sessions")).name).toBe("whatsapp_sessions");
  });

  it("signs in again by itself once its token has expired", async () => {
    const { url, adminEmail, adminPassword } = testPocketBase();
    const pb = await createServiceClient({ url, email: adminEmail, password: adminPassword });
    pb.authStore.save(expiredToken(), pb.authStore.record);
    expect(pb.authStore.isValid).toBe(false);

    await expect(pb.collections.getOne("whatsapp_sessions")).resolves.toMatchObject({ name: "whatsapp_sessions" });
    expect(pb.authStore.isValid).toBe(true);
  });

  it("runs identical concurrent requests without cancelling any", async () => {
    const { url, adminEmail, adminPassword } = testPocketBase();
    const pb = await createServiceClient({ url, email: adminEmail, password: adminPassword });
    const results = await Promise.all([1, 2, 3].map(() => pb.collection("whatsapp_sessions").getList(1, 1)));
    expect(results).toHaveLength(3);
  });

  it("fails with a typed error on wrong credentials", async () => {
    const { url, adminEmail } = testPocketBase();
    await expect(createServiceClient({ url, email: adminEmail, password: "wrong-password" })).rejects.toBeInstanceOf(
      ServiceAuthError,
    );
  });
});
