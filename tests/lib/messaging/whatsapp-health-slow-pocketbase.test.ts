import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { parseEnv } from "../../../src/env";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { testPocketBase } from "../../helpers/pocketbase";

const SIGN_IN_MS = 1_000;
const STATS_MS = 2_500;

/**
 * The first health call of a process (the runtime not built yet) against a PocketBase
 * that is slow but answers: the runtime's sign-in takes 1 s, the storage totals 2.5 s.
 * Each alone is within the route's 3 s; one after the other they are not.
 */
describe("getWhatsAppHealth against a slow PocketBase, before the runtime is built", () => {
  let proxy: Awaited<ReturnType<typeof startPartitionProxy>>;

  beforeAll(async () => {
    const { url, adminEmail, adminPassword } = testPocketBase();
    proxy = await startPartitionProxy(url);
    vi.stubEnv("POCKETBASE_URL", proxy.url);
    vi.stubEnv("POCKETBASE_ADMIN_EMAIL", adminEmail);
    vi.stubEnv("POCKETBASE_ADMIN_PASSWORD", adminPassword);
    vi.stubEnv("SESSION_ENCRYPTION_KEY", randomBytes(32).toString("base64"));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await proxy.close();
  });

  it("gives the readings only what the runtime's wait left of the 3 s, not 3 s more", async () => {
    proxy.slowRequests("POST /api/collections/_superusers/auth-with-password", SIGN_IN_MS);
    proxy.slowResponses("GET /api/wavault/sessions/stats", STATS_MS);

    const health = await getWhatsAppHealth(parseEnv(process.env));

    // The totals came after the shared deadline: unreadable, so unhealthy. The other
    // readings answer at once and are there.
    expect(health).toMatchObject({ pocketbase: { reachable: true }, storage: null, healthy: false });
    expect(health.restore).not.toBeNull();
    expect(health.waitingToResume).not.toBeNull();
  }, 20_000);
});
