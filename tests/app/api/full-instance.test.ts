import http from "node:http";
import type { AddressInfo } from "node:net";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { findFreePort } from "../../../scripts/lib/pocketbase-server";
import { caller, statusUntil, type Json } from "../../helpers/api-caller";
import type { NextServer } from "../../helpers/next-server";
import { createTestUser } from "../../helpers/pocketbase";
import { startWavaultInstance, untilAnnounced, type WavaultInstance } from "../../helpers/wavault-instance";

// Two instances of one deployment behind a load balancer that sends every connect to A:
// A has room for one client, B for two. Both resume sessions, and so announce themselves
// to each other (there are none to resume here). The tests run in order, each on the
// clients the ones before it left running.
describe("a connect reaching an instance with no room is started on one with room", () => {
  let instance: WavaultInstance;
  let a: NextServer;
  let b: NextServer;
  let admin: PocketBase;

  beforeAll(async () => {
    instance = await startWavaultInstance({ INSTANCE_ID: "full-a", INSTANCE_URL: "{url}", MAX_WHATSAPP_CONNECTIONS: "1" });
    a = instance.server;
    b = (await instance.startPeer({ INSTANCE_ID: "full-b", INSTANCE_URL: "{url}", MAX_WHATSAPP_CONNECTIONS: "2", MAX_WHATSAPP_QR_WAITING: "2" })).server;
    admin = await instance.pocketbase.admin();
    await untilAnnounced(admin, ["full-a", "full-b"]);
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
  });

  const activeOn = async (server: NextServer) =>
    ((await (await fetch(`${server.url}/api/health/whatsapp`)).json()) as Json).connections.active as number;
  const connectViaA = async () => {
    const user = await createTestUser(admin);
    const viaA = caller(() => a, user.token);
    return { user, viaA, answer: await viaA("POST", "/api/whatsapp/connect") };
  };
  const leaseOwnerOf = async (userId: string) =>
    (await admin.collection("whatsapp_sessions").getFirstListItem(admin.filter("user = {:userId}", { userId }))).lease_owner as string;

  it("starts the connect on another instance that has room, which then answers for the session", async () => {
    const first = await connectViaA();
    expect(first.answer.status).toBe(202);
    expect(first.answer.headers.get("x-wavault-answered-by")).toBeNull(); // A's own answer
    expect(await activeOn(a)).toBe(1); // A is full now

    const second = await connectViaA();
    // (The answer may come as the client shows its first QR or just before: "initializing".)
    expect(second.answer).toMatchObject({ status: 202, body: { status: expect.stringMatching(/^(initializing|qr_ready)$/) } });
    expect(second.answer.headers.get("x-wavault-answered-by")).toBe("full-b");
    expect([await activeOn(a), await activeOn(b)]).toEqual([1, 1]);
    expect(await leaseOwnerOf(second.user.record.id)).toMatch(/^full-b\//);
    // The session runs on B: its status through A is B's, QR included.
    const waiting = await statusUntil(second.viaA, (body) => body.status === "qr_ready" && body.qr !== null);
    expect(waiting.qr).toMatch(/^data:image\/png;base64,/);
  });

  it("passes over an instance it cannot reach, and, for a new link, one that takes no new links", async () => {
    // An instance that announced itself with nothing to run (it looks the least loaded),
    // at an address where nothing listens.
    const ghost = `http://127.0.0.1:${await findFreePort()}`;
    const announce = (owner: string, url: string, standing: { accepting: boolean; acceptingNewLinks?: boolean }) =>
      admin.send("/api/wavault/instances/beat", {
        method: "POST",
        body: { owner, instanceId: owner.split("/")[0], url, ...standing, maxConnections: 10, ttlMs: 10 * 60_000 },
      });
    await announce("ghost/0", ghost, { accepting: true });
    // One that takes sessions but has as many clients waiting for a QR scan as it allows:
    // listed as the least loaded too, it would be asked (and refuse) before B.
    const asked: string[] = [];
    const qrFull = http.createServer((request, response) => {
      asked.push(request.url ?? "");
      response.writeHead(503).end();
    });
    await new Promise<void>((resolve) => qrFull.listen(0, "127.0.0.1", resolve));
    try {
      await announce("qr-full/0", `http://127.0.0.1:${(qrFull.address() as AddressInfo).port}`, { accepting: true, acceptingNewLinks: false });

      const third = await connectViaA();
      expect(third.answer).toMatchObject({ status: 202, body: { status: expect.stringMatching(/^(initializing|qr_ready)$/) } });
      expect(third.answer.headers.get("x-wavault-answered-by")).toBe("full-b");
      expect(asked).toEqual([]);
      await statusUntil(third.viaA, (body) => body.status === "qr_ready"); // B runs it, and A answers with B's status
      expect([await activeOn(a), await activeOn(b)]).toEqual([1, 2]);
    } finally {
      await new Promise((resolve) => qrFull.close(resolve));
    }
  });

  it("answers 503 connection_limit when no instance has room, and starts nothing anywhere", async () => {
    // B is full, though its record may still say otherwise until its next heartbeat: asked,
    // it refuses, and the refusal is A's own.
    const fourth = await connectViaA();
    expect(fourth.answer).toMatchObject({ status: 503, body: { error: { code: "connection_limit" } } });
    expect(fourth.answer.headers.get("x-wavault-answered-by")).toBeNull();
    expect([await activeOn(a), await activeOn(b)]).toEqual([1, 2]);
    await expect(leaseOwnerOf(fourth.user.record.id)).rejects.toMatchObject({ status: 404 });
  });
});
