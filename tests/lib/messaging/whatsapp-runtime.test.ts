import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { SessionStatus } from "../../../src/lib/messaging/database-session-store";
import { ConnectionLimitError } from "../../../src/lib/messaging/connection-manager";
import { SessionLease, SessionLeasedElsewhereError } from "../../../src/lib/messaging/session-lease";
import { readSessionSummary } from "../../../src/lib/messaging/session-summary";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { processTree } from "../../../src/lib/system/process-tree-memory";
import { writeEmulatorCache } from "../../fixtures/wa-web-emulator";
import { newKeyRing } from "../../helpers/crafted-archive";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { adminClient, createTestUser } from "../../helpers/pocketbase";
import { closed, connectPaired, newRuntime, nextArchive, phone, waitForStatus } from "../../helpers/whatsapp-runtime";

describe("WhatsAppChannel and ConnectionManager against the emulator", () => {
  let admin: PocketBase;
  let dir: string;
  let webCacheDir: string;
  const keys = newKeyRing();
  const runtimes: ReturnType<typeof newRuntime>[] = [];
  const runtime = (name: string, maxConnections?: number, instanceId = `instance-${name}`) => {
    const created = newRuntime({ admin, keys, sessionRoot: path.join(dir, name), webCacheDir, maxConnections, instanceId });
    runtimes.push(created);
    return created;
  };

  /** An "instance" whose PocketBase traffic goes through a proxy the test can break; `proxy.close()` after. */
  const behindProxy = async (name: string, leaseTtlMs: number, reconnectDelayMs?: number) => {
    const proxy = await startPartitionProxy(admin.baseURL);
    const proxied = new PocketBase(proxy.url);
    proxied.autoCancellation(false);
    proxied.authStore.save(admin.authStore.token, admin.authStore.record);
    const created = newRuntime({ admin: proxied, keys, sessionRoot: path.join(dir, name), webCacheDir, instanceId: `instance-${name}`, leaseTtlMs, reconnectDelayMs });
    runtimes.push(created);
    return { proxy, ...created };
  };

  /** Pairs a user on an instance behind a proxy, then cuts the instance off from PocketBase until its client has stopped. */
  const pairedThenCutOff = async (
    instance: ReturnType<typeof newRuntime>,
    proxy: Awaited<ReturnType<typeof startPartitionProxy>>,
  ) => {
    const user = await createTestUser(admin);
    const channel = await connectPaired(instance.manager, user.record.id);
    await channel.statusRecorded();
    const ended = closed(channel, 20_000);
    proxy.partition();
    await ended;
    return { user, channel };
  };

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-runtime-"));
    webCacheDir = path.join(dir, "web-cache");
    await writeEmulatorCache(webCacheDir, { qrRotateMs: 400 });
  });
  afterAll(async () => {
    for (const { manager } of runtimes) await manager.stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps the promise: a new deployment on a wiped disk reaches ready with no QR", async () => {
    const user = await createTestUser(admin);
    const first = runtime("instance-a");
    const channel = await first.manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    expect(channel.qr?.dataUrl).toMatch(/^data:image\/png;base64,/);

    const archived = nextArchive(channel);
    await phone(channel, "pair");
    await waitForStatus(channel, "ready");
    await archived;
    expect(await first.store.hasSession(user.record.id)).toBe(true);
    expect(channel.phoneNumber).toBe("4915100000001");

    await first.manager.stopAll();
    await rm(path.join(dir, "instance-a"), { recursive: true, force: true });

    const second = runtime("instance-b");
    const statuses: SessionStatus[] = [];
    const again = await second.manager.connect(user.record.id);
    again.on("status", (status: SessionStatus) => statuses.push(status));
    await waitForStatus(again, "ready");
    expect(statuses).not.toContain("qr_ready");
    await again.statusRecorded();
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(record).toMatchObject({ status: "ready", phone_number: "4915100000001" });
    await second.manager.stopAll();
  });

  it("runs a session on one instance only; the other takes over once the owner stops", async () => {
    const user = await createTestUser(admin);
    const [a, b] = [runtime("lease-a"), runtime("lease-b")];
    const attempts = await Promise.allSettled([a.manager.connect(user.record.id), b.manager.connect(user.record.id)]);
    const won = attempts.filter((attempt) => attempt.status === "fulfilled");
    const lost = attempts.find((attempt) => attempt.status === "rejected") as PromiseRejectedResult;
    expect(won).toHaveLength(1);
    expect(lost.reason).toBeInstanceOf(SessionLeasedElsewhereError);

    const [owner, other] = a.manager.get(user.record.id) ? [a, b] : [b, a];
    expect(other.manager.get(user.record.id)).toBeUndefined();
    // A refused instance leaves the owner's record alone (no "failed" over its status);
    // a refused connect settles only after its channel has finished writing.
    const running = owner.manager.get(user.record.id)!;
    await waitForStatus(running, "qr_ready");
    await running.statusRecorded();
    await expect(other.manager.connect(user.record.id)).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(record.status).toBe("qr_ready");
    await owner.manager.stopAll(); // a graceful stop releases the lease
    const taken = await other.manager.connect(user.record.id);
    expect(taken.userId).toBe(user.record.id);
    await other.manager.stopAll();
  });

  it("takes a session over once a crashed owner's lease expires", async () => {
    const user = await createTestUser(admin);
    // An instance that claimed the session and died: it never renews.
    await new SessionLease(admin, { instanceId: "crashed", ttlMs: 1_000 }).claim(user.record.id);
    const { manager } = runtime("survivor");
    await expect(manager.connect(user.record.id)).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the lease has no event to await: it lapses
    const channel = await manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    await manager.stopAll();
  });

  it("shares one client between concurrent connects and caps connections", async () => {
    const { manager } = runtime("capped", 2);
    const [a, b, c] = [await createTestUser(admin), await createTestUser(admin), await createTestUser(admin)];
    const [first, same] = await Promise.all([manager.connect(a.record.id), manager.connect(a.record.id)]);
    expect(same).toBe(first);
    await manager.connect(b.record.id);
    await expect(manager.connect(c.record.id)).rejects.toBeInstanceOf(ConnectionLimitError);
    expect(manager.canCreateConnection(c.record.id, "whatsapp")).toBe(false);

    await manager.disconnect(a.record.id);
    const third = await manager.connect(c.record.id);
    expect(third.userId).toBe(c.record.id);
    expect(manager.getStats()).toMatchObject({ activeConnections: 2, maxConnections: 2 });
    await manager.stopAll();
  });

  it("closes clients that never got ready within the idle time, and prints the seed's status lines", async () => {
    const { manager } = runtime("stale");
    const user = await createTestUser(admin);
    const channel = await manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    expect(await manager.cleanupStaleConnections(60_000)).toEqual([]); // still young
    expect(await manager.cleanupStaleConnections(0)).toEqual([user.record.id]);
    expect(channel.status).toBe("disconnected");
    expect(manager.get(user.record.id)).toBeUndefined();

    const lines: string[] = [];
    const print = console.log;
    console.log = (line: string) => void lines.push(line);
    try {
      manager.printStatus();
    } finally {
      console.log = print;
    }
    expect(lines[0]).toBe("Active: 0/10");
    expect(lines[1]).toMatch(/^Memory: \d+ MB$/);
  });

  it("measures the browsers' memory from /proc, shared pages counted once", async () => {
    const { manager } = runtime("memory");
    const user = await createTestUser(admin);
    const channel = await manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    const pids = processTree(channel.browserPid!);
    expect(pids.length).toBeGreaterThan(1); // the browser and its renderer, GPU, … processes
    const kbFrom = (file: string, field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(file, "utf8"))?.[1] ?? 0);
    const pssMb = pids.reduce((sum, pid) => sum + kbFrom(`/proc/${pid}/smaps_rollup`, "Pss"), 0) / 1024;
    const rssMb = execFileSync("ps", ["-o", "rss=", "-p", pids.join(",")], { encoding: "utf8" })
      .trim()
      .split(/\s+/)
      .reduce((sum, kb) => sum + Number(kb), 0) / 1024;

    const measured = manager.getStats().memoryUsageMB;
    expect(measured).toBeGreaterThan(20);
    expect(Math.abs(measured - pssMb)).toBeLessThan(Math.max(10, pssMb * 0.15));
    expect(measured).toBeLessThan(rssMb); // RSS summed counts shared pages once per process
    await manager.stopAll();
  });

  it("starts a new client for a connect that arrives while the old one is stopping", async () => {
    const { manager } = runtime("restart");
    const user = await createTestUser(admin);
    const first = await connectPaired(manager, user.record.id);

    const stopping = manager.disconnect(user.record.id);
    const second = await manager.connect(user.record.id);
    await stopping;
    expect(first.stopping).toBe(true);
    expect(second).not.toBe(first);
    expect(manager.get(user.record.id)).toBe(second);
    await waitForStatus(second, "ready"); // from the archive the stop saved: no QR
  });

  it("deletes the stored session when the phone unlinks the device", async () => {
    const { manager, store } = runtime("unlink");
    const user = await createTestUser(admin);
    const channel = await connectPaired(manager, user.record.id);
    expect(await store.hasSession(user.record.id)).toBe(true);

    const ended = closed(channel);
    await phone(channel, "unlink");
    await ended;
    expect(channel.status).toBe("disconnected");
    expect(await store.hasSession(user.record.id)).toBe(false);
    expect(manager.get(user.record.id)).toBeUndefined();
    // Nothing of it is left: no record with the phone number comes back with the last status.
    await channel.statusRecorded();
    await expect(admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).rejects.toMatchObject({ status: 404 });
  });

  it("does not bring back a session logged out on another instance from the profile left on disk", async () => {
    const first = runtime("left-behind");
    const user = await createTestUser(admin);
    await connectPaired(first.manager, user.record.id);
    await first.manager.disconnect(user.record.id); // the logged-in profile stays on this instance's disk
    expect(existsSync(first.sessionDir(user.record.id))).toBe(true);

    // The user logs out through another instance, which has no client: it deletes the stored session.
    await runtime("elsewhere").store.deleteSession(user.record.id);

    const statuses: SessionStatus[] = [];
    const again = await first.manager.connect(user.record.id);
    again.on("status", (status: SessionStatus) => statuses.push(status));
    await waitForStatus(again, "qr_ready");
    expect(statuses).not.toContain("ready");
    await first.manager.stopAll();
  });

  it("losing the lease while the browser starts leaves no browser running and the new owner's status alone", async () => {
    // A short lease: renewed every 300 ms, so the loss is noticed while Chromium starts.
    const starting = newRuntime({ admin, keys, sessionRoot: path.join(dir, "outrun"), webCacheDir, instanceId: "instance-outrun", leaseTtlMs: 900 });
    runtimes.push(starting);
    const user = await createTestUser(admin);
    const sessions = admin.collection("whatsapp_sessions");
    // Another instance takes the session over as soon as this one has claimed it and
    // said it is initializing (there is no event to await across instances: poll).
    const takeover = (async () => {
      for (;;) {
        const record = await sessions.getFirstListItem(`user = "${user.record.id}"`).catch(() => null);
        if (record?.lease_owner && record.status === "initializing") {
          await sessions.update(record.id, {
            lease_owner: "instance-thief",
            lease_generation: (record.lease_generation as number) + 1,
            lease_expires: new Date(Date.now() + 60_000).toISOString(),
            status: "ready",
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    await starting.manager.connect(user.record.id).catch(() => {}); // the start may fail or succeed and end
    await takeover;
    const profileDir = starting.sessionDir(user.record.id);
    await expect.poll(() => starting.manager.get(user.record.id), { timeout: 10_000 }).toBeUndefined();
    const browsers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.includes(profileDir));
    expect(browsers, "a Chromium outlived the channel that lost its lease").toEqual([]);
    const record = await sessions.getFirstListItem(`user = "${user.record.id}"`);
    expect(record).toMatchObject({ lease_owner: "instance-thief", status: "ready" });
  });

  it("an owner whose session was taken over before it noticed writes no status over the new owner's", async () => {
    // The lease lasts 30 s (renewed every 10 s): the takeover below goes unnoticed
    // until this instance's next write to the record.
    const { manager } = runtime("taken-over");
    const user = await createTestUser(admin);
    const channel = await connectPaired(manager, user.record.id);
    await channel.statusRecorded();
    const sessions = admin.collection("whatsapp_sessions");
    const record = await sessions.getFirstListItem(`user = "${user.record.id}"`);
    await sessions.update(record.id, {
      lease_owner: "instance-thief",
      lease_generation: (record.lease_generation as number) + 1,
      lease_expires: new Date(Date.now() + 60_000).toISOString(),
      status: "authenticating",
    });

    const ended = closed(channel);
    process.kill(channel.browserPid!, "SIGKILL");
    await ended;
    expect(await sessions.getOne(record.id)).toMatchObject({ lease_owner: "instance-thief", status: "authenticating" });
  });

  it("an owner cut off from PocketBase stops its browser before its lease expires there; another instance then takes over without a QR", async () => {
    // A 12 s lease: renewed every 4 s, given up after 10 s, two seconds to spare for the browser.
    const { proxy, ...cutOff } = await behindProxy("cut-off", 12_000);
    try {
      const user = await createTestUser(admin);
      const channel = await connectPaired(cutOff.manager, user.record.id);
      await channel.statusRecorded();
      // "disconnected" is emitted once the browser is closed (the status write may then wait).
      const stopped = waitForStatus(channel, "disconnected", 20_000);
      const ended = closed(channel, 20_000);
      proxy.partition(); // its renewals now hang; another instance still reaches PocketBase
      await stopped;
      const endedAt = Date.now();
      await ended;
      const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
      const expiresAt = new Date(String(record.lease_expires)).getTime();
      expect(endedAt, "the browser outlived the lease PocketBase holds for it").toBeLessThan(expiresAt);
      const browsers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
        .split("\n")
        .filter((line) => line.includes(cutOff.sessionDir(user.record.id)));
      expect(browsers).toEqual([]);

      await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 50)); // the lease lapses: no event to await
      const { manager } = runtime("after-cut-off");
      const taken = await manager.connect(user.record.id);
      await waitForStatus(taken, "ready");
      await manager.stopAll();
    } finally {
      await proxy.close();
    }
  });

  it("starts a session stopped for losing touch with PocketBase again by itself once PocketBase answers, without a QR", async () => {
    const { proxy, ...blip } = await behindProxy("blip", 6_000, 500);
    try {
      const { user, channel } = await pairedThenCutOff(blip, proxy);
      proxy.heal();
      // A client that needed a QR would wait at qr_ready: nobody scans here.
      await expect.poll(() => blip.manager.get(user.record.id)?.status, { timeout: 30_000 }).toBe("ready");
      expect(blip.manager.get(user.record.id)).not.toBe(channel);
      await blip.manager.disconnect(user.record.id);
    } finally {
      await proxy.close();
    }
  });

  it("does not start a session lost that way again once its user stopped it through another instance meanwhile", async () => {
    const { proxy, ...blip } = await behindProxy("blip-stopped", 3_000, 500);
    try {
      const { user } = await pairedThenCutOff(blip, proxy);
      await expect.poll(async () => (await readSessionSummary(admin, user.record.id))?.lease, { timeout: 10_000 }).toBeNull(); // lapsed
      const other = runtime("blip-other");
      expect(await new UserSessionService(other.runtime).disconnect(user.record.id)).toMatchObject({ keepRunning: false });

      proxy.heal();
      await new Promise((resolve) => setTimeout(resolve, 3_000)); // six reconnect delays: nothing may start
      expect(blip.manager.get(user.record.id)).toBeUndefined();
      expect(await readSessionSummary(admin, user.record.id)).toMatchObject({ keepRunning: false, lease: null });
    } finally {
      await proxy.close();
    }
  });

  it("an owner whose renewals reach PocketBase but whose answers do not stops its browser, then releases the lease", async () => {
    const { proxy, ...deaf } = await behindProxy("deaf", 6_000);
    try {
      const user = await createTestUser(admin);
      const channel = await connectPaired(deaf.manager, user.record.id);
      const ended = closed(channel, 15_000);
      proxy.slowResponses("POST /api/wavault/leases/renew", 60_000); // PocketBase renews, this instance never hears
      await ended;
      // The lease it gave up on its deadline was still its own in PocketBase: released, not left to expire.
      const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
      expect(record.lease_owner).toBe("");
    } finally {
      await proxy.close();
    }
  });

  it("keeps renewing its lease while a slow upload is under way, so a healthy client is not stopped", async () => {
    // A 6 s lease (given up after 5 s without a renewal); every archive upload takes 7 s.
    const { proxy, ...slow } = await behindProxy("slow-upload", 6_000);
    try {
      proxy.slowRequests("POST /api/wavault/sessions/archive", 7_000);
      const user = await createTestUser(admin);
      const channel = await connectPaired(slow.manager, user.record.id); // resolves once the slow upload is done
      // Still running: its browser alive (a channel that gave its lease up has none).
      const pid = channel.browserPid;
      expect(pid, "the browser was closed while the upload was under way").not.toBeNull();
      expect(() => process.kill(pid!, 0)).not.toThrow();
      expect([channel.status, slow.manager.get(user.record.id)]).toEqual(["ready", channel]);
      await slow.manager.stopAll();
    } finally {
      await proxy.close();
    }
  });

  it("notices a killed browser and reconnects from the last archive without a QR", async () => {
    const { manager } = runtime("kill");
    const user = await createTestUser(admin);
    const channel = await connectPaired(manager, user.record.id);

    const ended = closed(channel);
    process.kill(channel.browserPid!, "SIGKILL");
    await ended;
    expect(channel.status).toBe("disconnected");
    expect(manager.get(user.record.id)).toBeUndefined();

    const statuses: SessionStatus[] = [];
    const again = await manager.connect(user.record.id);
    again.on("status", (status: SessionStatus) => statuses.push(status));
    await waitForStatus(again, "ready");
    expect(statuses).not.toContain("qr_ready");
    await manager.stopAll();
  });
});
