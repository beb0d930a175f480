import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type PocketBase from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import type { SessionStatus } from "../../../src/lib/messaging/database-session-store";
import { ConnectionLimitError } from "../../../src/lib/messaging/connection-manager";
import { SessionLease, SessionLeasedElsewhereError } from "../../../src/lib/messaging/session-lease";
import { findChromium } from "../../../src/lib/browser/find-chromium";
import { processTree } from "../../../src/lib/system/process-tree-memory";
import { createTestUser } from "../../helpers/pocketbase";
import { browserProcesses, closed, connectPaired, emulatorDeployments, nextArchive, phone, waitForStatus, withStalledWebVersion } from "../../helpers/whatsapp-runtime";

describe("WhatsAppChannel and ConnectionManager against the emulator", () => {
  const deployments = emulatorDeployments("wavault-runtime-");
  let admin: PocketBase;
  const runtime = (name: string, maxConnections?: number, instanceId = `instance-${name}`) =>
    deployments.deploy(name, { maxConnections, instanceId });

  beforeAll(() => {
    admin = deployments.admin;
  });

  /**
   * Another instance ("instance-thief") takes the user's session over as soon as this one
   * has claimed it and said it is initializing, and records it ready (there is no event
   * to await across instances: poll).
   */
  const takeOverOnceInitializing = async (userId: string) => {
    const sessions = admin.collection("whatsapp_sessions");
    for (;;) {
      const record = await sessions.getFirstListItem(`user = "${userId}"`).catch(() => null);
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
  };

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
    await rm(deployments.sessionRoot("instance-a"), { recursive: true, force: true });

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

  it("starts a new client for a connect that arrives while the old one is stopped in the middle of its start", async () => {
    await withStalledWebVersion(deployments.webCacheDir, "2.9999.3-stalled", async (webVersion) => {
      const { manager } = deployments.deploy("restart-starting", { webVersion });
      const user = await createTestUser(admin);
      const starting = manager.connect(user.record.id); // WhatsApp Web never loads: still starting
      starting.catch(() => {});
      const first = manager.get(user.record.id)!;
      await expect.poll(() => first.status, { timeout: 30_000 }).toBe("initializing");

      const stopping = manager.disconnect(user.record.id);
      const second = manager.connect(user.record.id); // stays in its start too: not awaited
      second.catch(() => {});
      await stopping;
      await expect(starting).rejects.toBeDefined();
      // A new client, not the first start's failure handed to this connect.
      await expect.poll(() => manager.get(user.record.id), { timeout: 30_000 }).toBeDefined();
      expect(manager.get(user.record.id)).not.toBe(first);
      await manager.stopAll();
    });
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
    const starting = deployments.deploy("outrun", { leaseTtlMs: 900 });
    const user = await createTestUser(admin);
    const sessions = admin.collection("whatsapp_sessions");
    const takeover = takeOverOnceInitializing(user.record.id);

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

  it("losing the lease while the browser starts ends the start even when WhatsApp Web never loads, browser and all", async () => {
    // initialize() would wait for ever on this page.
    await withStalledWebVersion(deployments.webCacheDir, "2.9999.1-stalled", async (webVersion) => {
      // A browser that takes 2 s to launch: the lease (renewed every 300 ms) is lost while
      // it does, before whatsapp-web.js has a browser to close.
      const slowChromium = path.join(deployments.webCacheDir, "slow-chromium.sh");
      await writeFile(slowChromium, `#!/bin/sh\nsleep 2\nexec "${findChromium()!.path}" "$@"\n`, { mode: 0o755 });
      // No ready deadline: only the lost lease ends this start.
      const starting = deployments.deploy("outrun-stalled", { leaseTtlMs: 900, webVersion, chromePath: slowChromium });
      const user = await createTestUser(admin);
      const takeover = takeOverOnceInitializing(user.record.id);
      const connecting = starting.manager.connect(user.record.id);
      const channel = starting.manager.get(user.record.id)!;
      await takeover;
      // The channel ends (and releases the lease) only once the browser that came up is gone.
      await channel.whenClosed();
      const profileDir = starting.sessionDir(user.record.id);
      expect(browserProcesses(profileDir, "main"), "a Chromium outlived the channel that lost its lease").toEqual([]);
      await expect.poll(() => browserProcesses(profileDir), { timeout: 5_000 }).toEqual([]); // its helpers follow
      await expect(connecting).rejects.toThrow(); // and so does the start that was loading it
      expect(starting.manager.get(user.record.id)).toBeUndefined();
    });
  }, 60_000);

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
