import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { caller } from "../../helpers/api-caller";
import type { NextServer } from "../../helpers/next-server";
import { createTestUser } from "../../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../../helpers/wavault-instance";

describe("a full instance, without a cron secret, then without PocketBase", () => {
  let instance: WavaultInstance;
  let pocketbase: WavaultInstance["pocketbase"];
  let server: NextServer;

  beforeAll(async () => {
    instance = await startWavaultInstance({ MAX_WHATSAPP_CONNECTIONS: "1", INSTANCE_ID: "api-test-small" });
    ({ pocketbase, server } = instance);
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
  });

  it("answers 503 connection_limit past the cap, and reports itself unhealthy at 90% of it", async () => {
    const admin = await pocketbase.admin();
    const [first, second] = await Promise.all([createTestUser(admin), createTestUser(admin)]);
    expect((await caller(() => server, first.token)("POST", "/api/whatsapp/connect")).status).toBe(202);
    const refused = await caller(() => server, second.token)("POST", "/api/whatsapp/connect");
    expect(refused).toMatchObject({ status: 503, body: { error: { code: "connection_limit" } } });

    const response = await fetch(`${server.url}/api/health/whatsapp`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      connections: { active: 1, max: 1, utilizationPercent: 100 },
      healthy: false,
      pocketbase: { reachable: true },
    });
  });

  it("answers the cron with 503 when CRON_SECRET is unset", async () => {
    const response = await fetch(`${server.url}/api/cron/cleanup-sessions`, { headers: { authorization: "Bearer anything-at-all" } });
    expect(response.status).toBe(503);
    expect((await response.json()).error.code).toBe("cron_disabled");
  });

  it("reports PocketBase unreachable (503) once it stops, without leaking internals", async () => {
    const admin = await pocketbase.admin();
    const user = await createTestUser(admin);
    await pocketbase.stop();

    const response = await fetch(`${server.url}/api/health/whatsapp`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ storage: null, healthy: false, pocketbase: { reachable: false } });

    const status = await caller(() => server, user.token)("GET", "/api/whatsapp/status");
    expect(status.status).toBe(503);
    expect(status.body).toEqual({
      error: { code: "pocketbase_unavailable", message: "The session database is unreachable; try again shortly." },
    });
  });
});
