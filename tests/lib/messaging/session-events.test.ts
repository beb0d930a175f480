import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { createKeyRing } from "../../../src/lib/messaging/archive-keys";
import { SessionEventLog, type SessionEvent } from "../../../src/lib/messaging/session-event-log";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { stopRuntime } from "../../../src/lib/messaging/whatsapp-runtime";
import { writeEmulatorCache } from "../../fixtures/wa-web-emulator";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";
import { closed, connectPaired, newRuntime, waitForStatus } from "../../helpers/whatsapp-runtime";

/** "event" or "event:status", oldest first. */
const timeline = (events: SessionEvent[]) => [...events].reverse().map((event) => (event.status ? `${event.event}:${event.status}` : event.event));

/** Whether `expected` appears in `actual` in this order (other entries may come between). */
function inOrder(actual: string[], expected: string[]): boolean {
  let at = 0;
  for (const entry of actual) if (entry === expected[at]) at += 1;
  return at === expected.length;
}

describe("session events (whatsapp_session_events)", () => {
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  let dir: string;
  let webCacheDir: string;
  const keys = createKeyRing(randomBytes(32).toString("base64"));
  const runtimes: ReturnType<typeof newRuntime>[] = [];
  /** A new "deployment": its own empty profiles directory, the same PocketBase. */
  const deployment = (name: string, leaseTtlMs?: number) => {
    const created = newRuntime({ admin, keys, sessionRoot: path.join(dir, name), webCacheDir, instanceId: name, leaseTtlMs });
    runtimes.push(created);
    return created;
  };

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-events-"));
    webCacheDir = path.join(dir, "web-cache");
    await writeEmulatorCache(webCacheDir, { qrRotateMs: 400 });
  }, 60_000);

  afterAll(async () => {
    for (const { manager } of runtimes) await manager.stopAll();
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("records a session's life in order: connect, QR, ready, archive, stop, then a restore on a new deployment", async () => {
    const user = await createTestUser(admin);
    const first = deployment("first");
    await connectPaired(first.manager, user.record.id);
    await stopRuntime(first.runtime, 25_000); // as on SIGTERM: clients stopped, history written

    const second = deployment("second");
    const channel = await second.manager.connect(user.record.id);
    await waitForStatus(channel, "ready");
    // The save that "ready" started: its archive_saved belongs before the logout below.
    await channel.archiveSessionToDatabase("ready");
    await second.events.flushed(user.record.id);

    const events = await second.events.list(user.record.id, 100);
    const lines = timeline(events);
    expect(
      inOrder(lines, [
        "lease_claimed",
        "status:initializing",
        "qr_issued",
        "status:qr_ready",
        "status:authenticating",
        "status:ready",
        "archive_saved",
        "status:disconnected",
        "lease_claimed",
        "status:initializing",
        "restore",
        "status:ready",
        "restore_outcome",
      ]),
      lines.join(" → "),
    ).toBe(true);
    expect(lines.filter((line) => line === "qr_issued")).toHaveLength(1); // the QR rotated, but one wait is one event
    expect(lines.filter((line) => line === "restore_outcome")).toHaveLength(1); // one per start that restored
    expect(events.find((event) => event.event === "restore")!.data).toMatchObject({ tier: "database", bytes: expect.any(Number), ms: expect.any(Number) });
    expect(events.find((event) => event.event === "restore_outcome")!.data).toEqual({ success: true, reason: "ready" });
    expect(events.find((event) => event.event === "archive_saved")!.data).toMatchObject({ bytes: expect.any(Number), ms: expect.any(Number) });
    expect(JSON.stringify(events)).not.toMatch(/data:image|@[0-9A-Za-z+/]{20,}/); // never the QR itself

    // A logout deletes the session, not its history: that is what explains the next QR.
    await channel.logout();
    await second.events.flushed(user.record.id);
    const after = timeline(await second.events.list(user.record.id, 100));
    expect(after.slice(0, -1)).toEqual(lines);
    expect(after.at(-1)).toBe("logout");
  });

  it("counts restores that reached ready without a QR; a corrupted archive is a failure", async () => {
    // The rate counts every restore in PocketBase over 24 h: compare before and after.
    const env = parseEnv({
      POCKETBASE_URL: pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      INSTANCE_ID: "rate-second",
    });
    // (A runtime of its own: the health readings are cached per runtime for 10 s.)
    const before = (await getWhatsAppHealth(env, deployment("rate-probe").runtime)).restore!;
    const [good, corrupted] = await Promise.all([createTestUser(admin), createTestUser(admin)]);
    const first = deployment("rate-first");
    await connectPaired(first.manager, good.record.id);
    await connectPaired(first.manager, corrupted.record.id);
    await first.manager.stopAll();
    // Someone (or something) damages one stored archive: its bytes no longer match.
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${corrupted.record.id}"`);
    await admin.collection("whatsapp_sessions").update(record.id, { archive: new File([randomBytes(4096)], "damaged.wvlt") });

    const second = deployment("rate-second");
    await waitForStatus(await second.manager.connect(good.record.id), "ready");
    await waitForStatus(await second.manager.connect(corrupted.record.id), "qr_ready");
    await Promise.all([good, corrupted].map((user) => second.events.flushed(user.record.id)));

    const failed = await second.events.list(corrupted.record.id, 100);
    expect(failed.find((event) => event.event === "restore_failed")!.data).toEqual({ code: "archive_corrupt" });
    expect(failed.find((event) => event.event === "restore_outcome")!.data).toEqual({ success: false, reason: "qr_required" });

    const health = await getWhatsAppHealth(env, second.runtime);
    expect(health.restore).toEqual({
      attempted24h: before.attempted24h + 2,
      succeeded24h: before.succeeded24h + 1,
      successRate: Number(((before.succeeded24h + 1) / (before.attempted24h + 2)).toFixed(4)),
    });
    expect(health.lastArchiveAgeSeconds).toEqual(expect.any(Number)); // the good session is ready and archived
    expect(health.lastArchiveAgeSeconds).toBeLessThan(60);
    await second.manager.stopAll();
  });

  it("records a takeover of a crashed owner's lease, and the loss on an owner whose lease was taken", async () => {
    const user = await createTestUser(admin);
    // An owner that claimed the session and died: its lease lapses unreleased.
    const crashed = await new SessionLease(admin, { instanceId: "crashed", ttlMs: 1_000 }).claim(user.record.id);
    await delay(1_100);
    const heir = deployment("heir", 1_500);
    const channel = await heir.manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");

    // Meanwhile another instance takes the session (as if this one had been cut off):
    // the next renewal finds the lease gone, and the channel ends.
    const ended = closed(channel);
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    await admin.collection("whatsapp_sessions").update(record.id, {
      lease_owner: "usurper/1",
      lease_generation: record.lease_generation + 1,
      lease_expires: new Date(Date.now() + 60_000).toISOString(),
    });
    await ended;
    await heir.events.flushed(user.record.id);

    const events = await heir.events.list(user.record.id, 100);
    const takeover = events.find((event) => event.event === "lease_taken_over")!.data as { generation: number };
    // Users read their history: no server's name in it (the log has the owner taken over from).
    expect(Object.keys(takeover)).toEqual(["generation"]);
    expect(takeover.generation).toBeGreaterThan(crashed.generation);
    expect(inOrder(timeline(events), ["lease_claimed", "lease_taken_over", "status:qr_ready", "lease_lost", "status:disconnected"])).toBe(true);
  });

  it("deletes only events older than the retention cutoff", async () => {
    const user = await createTestUser(admin);
    const log = new SessionEventLog(admin);
    for (const status of ["initializing", "qr_ready"] as const) log.record(user.record.id, "status", { status });
    await log.flushed(user.record.id);
    await delay(5); // the cutoff must fall strictly between the two batches' timestamps
    const cutoff = new Date();
    await delay(5);
    log.record(user.record.id, "status", { status: "ready" });
    await log.flushed(user.record.id);

    expect(await log.pruneOlderThan(cutoff)).toBeGreaterThanOrEqual(2);
    expect(timeline(await log.list(user.record.id))).toEqual(["status:ready"]);
  });

  it("writes every user's pending events before flushedAll resolves", async () => {
    const [alice, bob] = await Promise.all([createTestUser(admin), createTestUser(admin)]);
    const log = new SessionEventLog(admin);
    for (let index = 0; index < 15; index++) {
      log.record(alice.record.id, "archive_saved", { data: { index } });
      log.record(bob.record.id, "archive_saved", { data: { index } });
    }
    await log.flushedAll();
    expect(await log.list(alice.record.id, 100)).toHaveLength(15);
    expect(await log.list(bob.record.id, 100)).toHaveLength(15);
  });

  it("orders the history by when events happened, not when they were stored", async () => {
    // A handover: the old instance's last event reaches PocketBase after the new
    // instance's first one, though it happened before it.
    const user = await createTestUser(admin);
    const oldInstance = new SessionEventLog(admin, { now: () => new Date("2026-01-01T10:00:00.000Z") });
    const newInstance = new SessionEventLog(admin, { now: () => new Date("2026-01-01T10:00:01.000Z") });
    newInstance.record(user.record.id, "lease_claimed");
    await newInstance.flushed(user.record.id);
    oldInstance.record(user.record.id, "archive_saved", { data: { reason: "stop" } });
    await oldInstance.flushed(user.record.id);

    const events = await newInstance.list(user.record.id);
    expect(events.map((event) => [event.event, event.at])).toEqual([
      ["lease_claimed", "2026-01-01T10:00:01.000Z"],
      ["archive_saved", "2026-01-01T10:00:00.000Z"],
    ]);
    expect(Date.parse(events[1]!.created)).toBeGreaterThanOrEqual(Date.parse(events[0]!.created));
  });

  it("lets a user read their own events only, and write none", async () => {
    const [alice, bob] = await Promise.all([createTestUser(admin), createTestUser(admin)]);
    const log = new SessionEventLog(admin);
    log.record(alice.record.id, "status", { status: "initializing" });
    log.record(bob.record.id, "status", { status: "ready" });
    await Promise.all([log.flushed(alice.record.id), log.flushed(bob.record.id)]);
    const bobsEvent = await admin.collection("whatsapp_session_events").getFirstListItem(`user = "${bob.record.id}"`);

    const own = await alice.pb.collection("whatsapp_session_events").getFullList();
    expect(own.map((event) => event.user)).toEqual([alice.record.id]);
    await expect(alice.pb.collection("whatsapp_session_events").getOne(bobsEvent.id)).rejects.toMatchObject({ status: 404 });
    await expect(
      alice.pb.collection("whatsapp_session_events").create({ user: alice.record.id, event: "logout" }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(alice.pb.collection("whatsapp_session_events").delete(own[0]!.id)).rejects.toMatchObject({ status: 403 });
  });
});
