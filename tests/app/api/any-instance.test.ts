import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { findFreePort } from "../../../scripts/lib/pocketbase-server";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { caller, connectReady, expectEveryClientRoute, statusUntil, type Json } from "../../helpers/api-caller";
import { EmulatedPhone } from "../../helpers/emulated-phone";
import type { NextServer } from "../../helpers/next-server";
import { createTestUser } from "../../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../../helpers/wavault-instance";

// Two instances of one deployment, each telling the other where it answers (INSTANCE_URL):
// a user's request may reach either, whichever runs the session.
describe("any instance answers every route for a session running on another one", () => {
  let instance: WavaultInstance;
  let a: NextServer;
  let b: NextServer;
  let admin: PocketBase;

  beforeAll(async () => {
    instance = await startWavaultInstance({ INSTANCE_ID: "forward-a", INSTANCE_URL: "{url}" });
    a = instance.server;
    b = (await instance.startPeer({ INSTANCE_ID: "forward-b", INSTANCE_URL: "{url}" })).server;
    admin = await instance.pocketbase.admin();
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
  });

  const activeOn = async (server: NextServer) =>
    ((await (await fetch(`${server.url}/api/health/whatsapp`)).json()) as Json).connections.active as number;

  it("shows the QR, sends and disconnects through the instance that does not run the session", async () => {
    const user = await createTestUser(admin);
    const [viaA, viaB] = [caller(() => a, user.token), caller(() => b, user.token)];
    expect((await viaA("POST", "/api/whatsapp/connect")).status).toBe(202);

    // Only A has the client, and with it the QR: B's answer is A's.
    const waiting = await statusUntil(viaB, (body) => body.status === "qr_ready" && body.qr !== null);
    expect(waiting.qr).toMatch(/^data:image\/png;base64,/);
    const phone = await EmulatedPhone.attach(instance.profileDir(user.record.id));
    try {
      await phone.pair();
      await statusUntil(viaB, (body) => body.status === "ready");

      // A connect through B finds the client running on A, and B starts nothing of its own.
      const failedStarts = () => b.output().split("WhatsApp client failed to start").length;
      const before = failedStarts();
      const again = await viaB("POST", "/api/whatsapp/connect");
      expect(again).toMatchObject({ status: 202, body: { status: "ready" } });
      expect(again.headers.get("x-wavault-answered-by")).toBe("forward-a");
      expect([await activeOn(a), await activeOn(b)]).toEqual([1, 0]);
      expect(failedStarts()).toBe(before);

      const sent = await viaB("POST", "/api/whatsapp/messages", { to: "+49 151 2345-6789", text: "sent through B" });
      expect(sent.status).toBe(200);
      expect(sent.headers.get("x-wavault-answered-by")).toBe("forward-a");
      expect(await phone.sentMessages()).toContainEqual(expect.objectContaining({ id: sent.body.id, body: "sent through B" }));
      // The key goes along: a retry through the other instance is the same send.
      const keyed = { "idempotency-key": "retry-through-either" };
      const once = await viaB("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "only once" }, keyed);
      const retried = await viaA("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "only once" }, keyed);
      expect(retried.body).toEqual({ id: once.body.id, replayed: true });
      expect((await phone.sentMessages()).filter((message: { body: string }) => message.body === "only once")).toHaveLength(1);
      // B forwards what it validated, not what it read: fields it ignores never make A's
      // copy bigger than the limit (1e20 is 4 characters here, 21 once re-serialised).
      const padded = `{"to":"+4915123456789","text":"padded","pad":[${Array(12_000).fill("1e20").join(",")}]}`;
      expect(padded.length).toBeLessThan(64 * 1024);
      const sentPadded = await viaB("POST", "/api/whatsapp/messages", padded);
      expect(sentPadded).toMatchObject({ status: 200, body: { id: expect.any(String) } });
      expect(sentPadded.headers.get("x-wavault-answered-by")).toBe("forward-a");
      // B validates what it forwards and what it does not: a bad body is B's own 422.
      expect((await viaB("POST", "/api/whatsapp/messages", { to: "nobody", text: "" })).status).toBe(422);
    } finally {
      await phone.detach();
    }

    const stopped = await viaB("POST", "/api/whatsapp/disconnect");
    expect(stopped).toMatchObject({ status: 200, body: { status: "disconnected", keepRunning: false } });
    expect(stopped.body.archive).not.toBeNull();
    expect(await activeOn(a)).toBe(0);
  });

  it("logs out through the instance that does not run the session", async () => {
    const user = await createTestUser(admin);
    await connectReady(caller(() => a, user.token), instance.profileDir(user.record.id));

    const out = await caller(() => b, user.token)("POST", "/api/whatsapp/logout");
    expect(out).toMatchObject({ status: 200, body: { status: "disconnected", archive: null } });
    await expect(admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).rejects.toMatchObject({ status: 404 });
    expect(existsSync(instance.profileDir(user.record.id))).toBe(false);
    expect(await activeOn(a)).toBe(0);
  });

  it("answers 409 leased_elsewhere when the instance running the session does not answer, and status from PocketBase", async () => {
    const user = await createTestUser(admin);
    const gone = `http://127.0.0.1:${await findFreePort()}`; // nothing listens there
    await new SessionLease(admin, { instanceId: "gone", ttlMs: 60_000, ownerUrl: gone }).claim(user.record.id);
    const viaB = caller(() => b, user.token);
    await expectEveryClientRoute(viaB, 409, "leased_elsewhere");
    expect(await viaB("GET", "/api/whatsapp/status")).toMatchObject({ status: 200, body: { status: "created", qr: null } });
  });

  it("answers 504 forward_failed when the request may have reached the owner but no answer of wavault's came back", async () => {
    // Something at the owner's address that is not wavault (a proxy's error page, say).
    const impostor = createServer((_request, response) => response.writeHead(502, { "content-type": "text/html" }).end("<h1>Bad gateway</h1>"));
    await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve));
    try {
      const user = await createTestUser(admin);
      const ownerUrl = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
      await new SessionLease(admin, { instanceId: "behind-a-proxy", ttlMs: 60_000, ownerUrl }).claim(user.record.id);
      const viaB = caller(() => b, user.token);
      // A send that may have gone out is never reported as refused (a client would send it again).
      const send = await viaB("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "hi" });
      expect(send).toMatchObject({ status: 504, body: { error: { code: "forward_failed" } } });
      expect(await viaB("GET", "/api/whatsapp/status")).toMatchObject({ status: 200, body: { status: "created", qr: null } });
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  it("gives up on an owner that takes the request and never answers: 504 after 30 s for a send, PocketBase's status after 5 s", async () => {
    const hanging = createServer(() => {}); // reads every request, answers none
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    try {
      const user = await createTestUser(admin);
      const ownerUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      await new SessionLease(admin, { instanceId: "hanging", ttlMs: 120_000, ownerUrl }).claim(user.record.id);
      const viaB = caller(() => b, user.token);

      let started = Date.now();
      expect(await viaB("GET", "/api/whatsapp/status")).toMatchObject({ status: 200, body: { status: "created", qr: null } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(5_000); // it did wait for the owner
      started = Date.now();
      const send = await viaB("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "hi" });
      expect(send).toMatchObject({ status: 504, body: { error: { code: "forward_failed" } } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(30_000);
    } finally {
      hanging.closeAllConnections();
      await new Promise((resolve) => hanging.close(resolve));
    }
  }, 60_000);

  it("never forwards a forwarded request again", async () => {
    // A lease naming B's own address for an owner that is not B: B forwards to itself once,
    // and the forwarded request is answered there (409), not sent round again.
    const user = await createTestUser(admin);
    await new SessionLease(admin, { instanceId: "impostor", ttlMs: 60_000, ownerUrl: b.url }).claim(user.record.id);
    const viaB = caller(() => b, user.token);
    const answer = await viaB("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "hi" });
    expect(answer).toMatchObject({ status: 409, body: { error: { code: "leased_elsewhere" } } });
    expect(answer.headers.get("x-wavault-answered-by")).toBe("forward-b");
    expect((await viaB("GET", "/api/whatsapp/status")).status).toBe(200);
  });
});
