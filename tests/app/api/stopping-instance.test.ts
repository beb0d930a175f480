import type PocketBase from "pocketbase";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { caller } from "../../helpers/api-caller";
import type { NextServer } from "../../helpers/next-server";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { createTestUser } from "../../helpers/pocketbase";
import { startWavaultInstance, untilAnnounced, type WavaultInstance } from "../../helpers/wavault-instance";

const RELEASE_HELD_MS = 10_000;

// A deploy's stop on instance A: its clients go, their leases are released, and only
// then does it exit. A connect it gets meanwhile is started on instance B, which has room.
// A reaches PocketBase through a proxy that holds lease releases, so that its stop lasts
// long enough to be asked.
describe("a connect reaching an instance that is shutting down", () => {
  let instance: WavaultInstance;
  let proxy: Awaited<ReturnType<typeof startPartitionProxy>>;
  let a: NextServer;
  let admin: PocketBase;

  beforeAll(async () => {
    instance = await startWavaultInstance({ INSTANCE_ID: "stay-b", INSTANCE_URL: "{url}" });
    proxy = await startPartitionProxy(instance.pocketbase.url);
    a = (await instance.startPeer({ INSTANCE_ID: "stopping-a", INSTANCE_URL: "{url}", POCKETBASE_URL: proxy.url })).server;
    admin = await instance.pocketbase.admin();
    await untilAnnounced(admin, ["stopping-a", "stay-b"]);
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
    await proxy?.close();
  });

  it("is started on another instance with room, and answered by it", async () => {
    const running = await createTestUser(admin);
    expect((await caller(() => a, running.token)("POST", "/api/whatsapp/connect")).status).toBe(202);

    proxy.slowRequests("POST /api/wavault/leases/release", RELEASE_HELD_MS);
    const stopped = a.stop();
    while (proxy.heldRequests === 0) await delay(50); // A is in its stop: its client's lease is being released

    const user = await createTestUser(admin);
    const answer = await caller(() => a, user.token)("POST", "/api/whatsapp/connect");
    expect(answer).toMatchObject({ status: 202, body: { status: expect.stringMatching(/^(initializing|qr_ready)$/) } });
    expect(answer.headers.get("x-wavault-answered-by")).toBe("stay-b");
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(admin.filter("user = {:user}", { user: user.record.id }));
    expect(record.lease_owner).toMatch(/^stay-b\//);

    await stopped;
    expect(a.output()).not.toContain("WhatsApp client failed to start");
  });
});
