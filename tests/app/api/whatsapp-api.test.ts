import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { caller, connectReady, expectEveryClientRoute, statusUntil, type Json } from "../../helpers/api-caller";
import { EmulatedPhone } from "../../helpers/emulated-phone";
import { readQrDataUrl } from "../../helpers/read-qr";
import type { NextServer } from "../../helpers/next-server";
import { createTestUser, type TestUser } from "../../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../../helpers/wavault-instance";

const PER_USER_ROUTES = [
  ["POST", "/api/whatsapp/connect"],
  ["GET", "/api/whatsapp/status"],
  ["POST", "/api/whatsapp/messages"],
  ["POST", "/api/whatsapp/disconnect"],
  ["POST", "/api/whatsapp/logout"],
] as const;

const DAY_MS = 24 * 60 * 60 * 1000;

describe("the WhatsApp HTTP API on next start", () => {
  let instance: WavaultInstance;
  let server: NextServer;
  let admin: PocketBase;
  const cronSecret = randomBytes(24).toString("hex");
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    instance = await startWavaultInstance({ CRON_SECRET: cronSecret, INSTANCE_ID: "api-test" });
    server = instance.server;
    admin = await instance.pocketbase.admin();
    [alice, bob] = await Promise.all([createTestUser(admin), createTestUser(admin)]);
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
  });

  const profileOf = (user: TestUser) => instance.profileDir(user.record.id);
  const activeConnections = async () => ((await (await fetch(`${server.url}/api/health/whatsapp`)).json()) as Json).connections.active;

  it("refuses every per-user route without a valid user token (401)", async () => {
    const superuserToken = admin.authStore.token;
    for (const token of [undefined, "not-a-token", superuserToken]) {
      for (const [method, route] of PER_USER_ROUTES) {
        const { status, body } = await caller(() => server, token)(method, route);
        expect({ route, token: token?.slice(0, 8), status, code: body.error?.code }).toEqual({
          route,
          token: token?.slice(0, 8),
          status: 401,
          code: "unauthorized",
        });
      }
    }
    // The cookie the dashboard sets is accepted like the header.
    const response = await fetch(`${server.url}/api/whatsapp/status`, { headers: { cookie: `wavault_token=${alice.token}` } });
    expect(response.status).toBe(200);
  });

  it("answers malformed JSON with 400, invalid fields with 422 and an oversized body with 413", async () => {
    const call = caller(() => server, alice.token);
    const malformed = await call("POST", "/api/whatsapp/messages", "{not json");
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } });

    const invalid = await call("POST", "/api/whatsapp/messages", { to: "call me maybe", text: "" });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error.code).toBe("validation_failed");
    expect(Object.keys(invalid.body.error.fields).sort()).toEqual(["text", "to"]);

    const tooLong = await call("POST", "/api/whatsapp/messages", { to: "+4915112345678", text: "x".repeat(4097) });
    expect(tooLong.body.error.fields).toHaveProperty("text");

    const huge = await call("POST", "/api/whatsapp/messages", { to: "+4915112345678", text: "x".repeat(100_000) });
    expect(huge).toMatchObject({ status: 413, body: { error: { code: "payload_too_large" } } });

    const form = await call("POST", "/api/whatsapp/messages", "to=1&text=2", { "content-type": "application/x-www-form-urlencoded" });
    expect(form).toMatchObject({ status: 415, body: { error: { code: "unsupported_media_type" } } });
  });

  it("takes a user from QR to ready to a sent message, and keeps the archive after a disconnect", async () => {
    const call = caller(() => server, alice.token);
    expect((await call("GET", "/api/whatsapp/status")).body).toEqual({
      status: "disconnected",
      qr: null,
      phoneNumber: null,
      lastActive: null,
      archive: null,
      keepRunning: false,
      archiveError: null,
    });

    const connected = await call("POST", "/api/whatsapp/connect");
    expect(connected.status).toBe(202);
    expect(["initializing", "qr_ready"]).toContain(connected.body.status);
    const waiting = await statusUntil(call, (body) => body.status === "qr_ready" && body.qr !== null);
    expect(waiting.qr).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);

    // A second connect returns the running client instead of starting another.
    expect((await call("POST", "/api/whatsapp/connect")).body.status).toBe("qr_ready");
    expect(await activeConnections()).toBe(1);

    const phone = await EmulatedPhone.attach(profileOf(alice));
    let phoneNumber: string;
    try {
      // The image scans (quiet zone and all) to the link WhatsApp Web offers: its ref first.
      const shown = await statusUntil(call, (body) => body.status === "qr_ready" && body.qr !== null);
      const scanned = readQrDataUrl(shown.qr);
      expect(scanned).toMatch(/^2@[^,]+(,[^,]+){3,}$/); // ref, then whatsapp-web.js's keys and platform
      expect(await phone.refsShown()).toContain(scanned!.split(",")[0]);
      await phone.pair();
      const ready = await statusUntil(call, (body) => body.status === "ready" && body.archive !== null);
      expect(ready.qr).toBeNull();
      expect(ready.phoneNumber).toMatch(/^\d+$/);
      expect((await statusUntil(call, (body) => body.keepRunning === true)).status).toBe("ready"); // from now on it comes back by itself
      phoneNumber = ready.phoneNumber;

      const sent = await call("POST", "/api/whatsapp/messages", { to: "+49 151 2345-6789", text: "Hello from wavault" });
      expect(sent.status).toBe(200);
      expect(sent.body.id).toEqual(expect.any(String));
      expect(await phone.sentMessages()).toContainEqual(
        expect.objectContaining({ id: sent.body.id, to: "4915123456789@c.us", body: "Hello from wavault" }),
      );

      // An Idempotency-Key makes a retry safe: the same message again, at once or while the
      // first is under way, is not sent again; the answer is the first send's id.
      const keyed = { "idempotency-key": "order-1234-reminder" };
      const message = { to: "+4915123456789", text: "Your order ships today" };
      const [first, concurrent] = await Promise.all([call("POST", "/api/whatsapp/messages", message, keyed), call("POST", "/api/whatsapp/messages", message, keyed)]);
      const retried = await call("POST", "/api/whatsapp/messages", message, keyed);
      expect([first.status, concurrent.status, retried.status]).toEqual([200, 200, 200]);
      expect(new Set([first.body.id, concurrent.body.id, retried.body.id]).size).toBe(1);
      expect([first.body.replayed, concurrent.body.replayed, retried.body.replayed].filter(Boolean)).toHaveLength(2);
      expect((await phone.sentMessages()).filter((sentMessage: { body: string }) => sentMessage.body === message.text)).toHaveLength(1);
      // Recorded in PocketBase too, so it outlives this instance (send-key-store.test.ts).
      const recorded = await admin
        .collection("whatsapp_send_keys")
        .getFirstListItem(admin.filter("user = {:userId} && idempotency_key = {:key}", { userId: alice.record.id, key: "order-1234-reminder" }));
      expect(recorded).toMatchObject({ message_id: first.body.id });
      // The key with another message is refused; another key, or none, sends.
      const reused = await call("POST", "/api/whatsapp/messages", { ...message, text: "Something else" }, keyed);
      expect(reused).toMatchObject({ status: 409, body: { error: { code: "idempotency_key_reused" } } });
      const other = await call("POST", "/api/whatsapp/messages", message, { "idempotency-key": "order-1234-reminder-2" });
      expect(other).toMatchObject({ status: 200, body: { id: expect.any(String) } });
      expect(other.body.id).not.toBe(first.body.id);
      expect(other.body.replayed).toBeUndefined();
      const badKey = await call("POST", "/api/whatsapp/messages", message, { "idempotency-key": "has spaces" });
      expect(badKey).toMatchObject({ status: 422, body: { error: { code: "validation_failed", fields: { "Idempotency-Key": [expect.any(String)] } } } });
      expect((await phone.sentMessages()).filter((sentMessage: { body: string }) => sentMessage.body === message.text)).toHaveLength(2);
    } finally {
      await phone.detach();
    }

    const stopped = await call("POST", "/api/whatsapp/disconnect");
    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe("disconnected");
    expect(stopped.body.archive).toEqual({
      sizeBytes: expect.any(Number),
      rawBytes: expect.any(Number),
      compressionRatio: expect.any(Number),
      savedAt: expect.any(String),
      encrypted: true,
    });
    expect(stopped.body.archive.sizeBytes).toBeGreaterThan(0);
    expect(stopped.body.archive.rawBytes).toBeGreaterThan(stopped.body.archive.sizeBytes);
    expect(stopped.body.lastActive).toEqual(expect.any(String));
    expect(stopped.body.phoneNumber).toBe(phoneNumber!);
    expect(stopped.body.keepRunning).toBe(false); // the user stopped it: nothing starts it again

    const notReady = await call("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "again" });
    expect(notReady).toMatchObject({ status: 409, body: { error: { code: "not_ready" } } });
  });

  it("never lets one user see or touch another user's session", async () => {
    const asAlice = caller(() => server, alice.token);
    const asBob = caller(() => server, bob.token);
    const connectedAt = new Date().toISOString();
    await connectReady(asAlice, profileOf(alice));
    // The archive a client saves once it is ready: after it, her record holds still.
    await statusUntil(asAlice, (body) => body.archive !== null && body.archive.savedAt >= connectedAt);
    const alicesRecord = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${alice.record.id}"`);

    // Bob sees only his own (empty) session, and nothing he sends names a user.
    expect((await asBob("GET", "/api/whatsapp/status")).body).toMatchObject({ status: "disconnected", phoneNumber: null, archive: null });
    expect((await asBob("GET", `/api/whatsapp/status?userId=${alice.record.id}`)).body.archive).toBeNull();
    expect((await asBob("POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "hi", userId: alice.record.id })).status).toBe(409);
    expect((await asBob("POST", "/api/whatsapp/disconnect", { userId: alice.record.id })).status).toBe(200);
    expect((await asBob("POST", "/api/whatsapp/logout", { userId: alice.record.id })).status).toBe(200);

    const alicesEvents = (await asAlice("GET", "/api/whatsapp/events")).body.events as Json[];
    expect(alicesEvents.map((event) => event.event)).toContain("status");
    expect(alicesEvents.length).toBeLessThanOrEqual(20);
    // Bob's history is his own: only the logout he just asked for, nothing of Alice's.
    // (Events are written in the background: poll until it is there.)
    await expect
      .poll(async () => ((await asBob("GET", "/api/whatsapp/events")).body.events as Json[]).map((event) => event.event))
      .toEqual(["logout"]);

    // Alice's client still runs and her stored session is untouched.
    expect((await asAlice("GET", "/api/whatsapp/status")).body.status).toBe("ready");
    const after = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${alice.record.id}"`);
    expect(after.archive).toBe(alicesRecord.archive);
    expect(after.metadata.sha256).toBe(alicesRecord.metadata.sha256);

    await asAlice("POST", "/api/whatsapp/disconnect");
  });

  it("logs out for good: stored session and local profile gone, the next connect asks for a QR", async () => {
    const user = await createTestUser(admin);
    const call = caller(() => server, user.token);
    await connectReady(call, profileOf(user));

    const out = await call("POST", "/api/whatsapp/logout");
    expect(out).toMatchObject({ status: 200, body: { status: "disconnected", phoneNumber: null, archive: null } });
    await expect(admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).rejects.toMatchObject({
      status: 404,
    });
    expect(existsSync(profileOf(user))).toBe(false);

    expect((await call("POST", "/api/whatsapp/connect")).status).toBe(202);
    expect((await statusUntil(call, (body) => ["qr_ready", "ready"].includes(body.status))).status).toBe("qr_ready");

    // Logging out with no client running: the stored session and the profile go too.
    await connectReady(call, profileOf(user));
    await call("POST", "/api/whatsapp/disconnect");
    expect((await call("GET", "/api/whatsapp/status")).body.archive).not.toBeNull();
    expect((await call("POST", "/api/whatsapp/logout")).body).toMatchObject({ status: "disconnected", archive: null });
    expect(existsSync(profileOf(user))).toBe(false);
    expect((await call("POST", "/api/whatsapp/connect")).status).toBe(202);
    expect((await statusUntil(call, (body) => ["qr_ready", "ready"].includes(body.status))).status).toBe("qr_ready");
    await call("POST", "/api/whatsapp/disconnect");
  });

  it("refuses cookie-authenticated changes from other sites (CSRF), but not its own pages or bearer clients", async () => {
    const user = await createTestUser(admin);
    const post = (headers: Record<string, string>) =>
      fetch(`${server.url}/api/whatsapp/disconnect`, { method: "POST", headers: { cookie: `wavault_token=${user.token}`, ...headers } });
    const crossSite: Record<string, string>[] = [{}, { origin: "https://evil.example" }, { "sec-fetch-site": "cross-site" }, { "sec-fetch-site": "same-site" }];
    for (const headers of crossSite) {
      const response = await post(headers);
      expect({ headers, status: response.status, code: ((await response.json()) as Json).error?.code }).toEqual({
        headers,
        status: 403,
        code: "forbidden",
      });
    }
    expect((await post({ "sec-fetch-site": "same-origin" })).status).toBe(200);
    expect((await post({ origin: server.url })).status).toBe(200);
    expect((await caller(() => server, user.token)("POST", "/api/whatsapp/disconnect")).status).toBe(200);
    // Reading needs no such proof: a cross-site page cannot read the answer anyway.
    expect((await fetch(`${server.url}/api/whatsapp/status`, { headers: { cookie: `wavault_token=${user.token}` } })).status).toBe(200);
  });

  it("refuses a session another instance holds (409 leased_elsewhere)", async () => {
    const user = await createTestUser(admin);
    await new SessionLease(admin, { instanceId: "another-instance", ttlMs: 60_000 }).claim(user.record.id);
    const call = caller(() => server, user.token);
    await expectEveryClientRoute(call, 409, "leased_elsewhere");
    expect((await call("GET", "/api/whatsapp/status")).status).toBe(200);
  });

  it("reports its health in the seed's shape", async () => {
    const response = await fetch(`${server.url}/api/health/whatsapp`);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toEqual({
      connections: { active: expect.any(Number), max: 100, utilizationPercent: expect.any(Number), memoryUsageMB: expect.any(Number), waitingForQr: expect.any(Number) },
      storage: { totalSessions: expect.any(Number), totalSizeMB: expect.any(Number), averageSizeMB: expect.any(Number) },
      healthy: true,
      pocketbase: { reachable: true },
      instanceId: "api-test",
      restore: { attempted24h: expect.any(Number), succeeded24h: expect.any(Number), successRate: body.restore?.attempted24h ? expect.any(Number) : null },
      lastArchiveAgeSeconds: null, // no session is ready here now
      archiveFailing: 0,
      waitingToResume: expect.any(Number), // over the shared PocketBase, which other tests use too
      failingToResume: expect.any(Number),
      disk: { freeMB: expect.any(Number), minFreeMB: 1024, freeInodes: expect.any(Number), enough: true },
    });
    expect(body.connections.utilizationPercent).toBe(body.connections.active);
  });

  it("runs the cleanup cron only with the right secret, deleting only stale unleased sessions", async () => {
    const sessions = admin.collection("whatsapp_sessions");
    const [stale, staleLeaseExpired, fresh, staleButRunning] = await Promise.all([1, 2, 3, 4].map(() => createTestUser(admin)));
    const longAgo = new Date(Date.now() - 40 * DAY_MS).toISOString();
    await sessions.create({ user: stale!.record.id, status: "disconnected", last_active: longAgo });
    await sessions.create({
      user: staleLeaseExpired!.record.id,
      status: "ready", // left so by an instance that died 40 days ago
      last_active: longAgo,
      lease_owner: `dead/${randomUUID()}`,
      lease_expires: longAgo,
    });
    await sessions.create({ user: fresh!.record.id, status: "disconnected", last_active: new Date(Date.now() - DAY_MS).toISOString() });
    await sessions.create({
      user: staleButRunning!.record.id,
      status: "ready",
      last_active: longAgo,
      lease_owner: `elsewhere/${randomUUID()}`,
      lease_expires: new Date(Date.now() + 60_000).toISOString(),
    });

    const cron = (authorization?: string) =>
      fetch(`${server.url}/api/cron/cleanup-sessions`, { headers: authorization ? { authorization } : {} });
    for (const authorization of [undefined, "Bearer wrong-secret", `Bearer ${cronSecret}x`, cronSecret]) {
      const response = await cron(authorization);
      expect(response.status).toBe(401);
      expect((await response.json()).error.code).toBe("unauthorized");
    }
    expect(await sessions.getFirstListItem(`user = "${stale!.record.id}"`)).toBeTruthy();

    const response = await cron(`Bearer ${cronSecret}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true, deletedSessions: 2, closedConnections: 0, deletedEvents: 0, deletedSendKeys: 0, deletedFiles: 0 });
    for (const user of [stale!, staleLeaseExpired!]) {
      await expect(sessions.getFirstListItem(`user = "${user.record.id}"`)).rejects.toMatchObject({ status: 404 });
    }
    expect(await sessions.getFirstListItem(`user = "${fresh!.record.id}"`)).toBeTruthy();
    expect(await sessions.getFirstListItem(`user = "${staleButRunning!.record.id}"`)).toBeTruthy();
  });
});
