import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";

import { VERSION_MARKER } from "../../../../src/lib/messaging/database-session-store";
import { createTestUser } from "../../../helpers/pocketbase";
import { closed, connectPaired, emulatorDeployments, nextArchive, phone, waitForStatus, withStalledWebVersion } from "../../../helpers/whatsapp-runtime";

/** A client must be ready within `readyWithinMs` of its start (the app's: 15 minutes), or it stops by itself. */
describe("a WhatsApp client that does not get ready in time", () => {
  const deployments = emulatorDeployments("wavault-deadline-");

  const historyOf = async (events: { flushed(userId: string): Promise<void>; list(userId: string, limit: number): Promise<{ event: string }[]> }, userId: string) => {
    await events.flushed(userId);
    return (await events.list(userId, 50)).map((entry) => entry.event);
  };

  it("stops when nobody links it, gives its room back and says so", async () => {
    const { manager, events, admin } = { ...deployments.deploy("unlinked", { maxConnections: 1, readyWithinMs: 3_000 }), admin: deployments.admin };
    const user = await createTestUser(admin);
    const channel = await manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    expect(manager.hasRoom()).toBe(false);

    await closed(channel, 15_000);
    expect([channel.status, channel.browserPid, manager.get(user.record.id)]).toEqual(["disconnected", null, undefined]);
    expect(manager.hasRoom()).toBe(true);
    expect(await historyOf(events, user.record.id)).toContain("stale_closed");
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(admin.filter("user = {:user}", { user: user.record.id }));
    expect(record).toMatchObject({ status: "disconnected", lease_owner: "" });
  });

  it("stops a start that hangs (WhatsApp Web never finishes loading), browser and all", async () => {
    await withStalledWebVersion(deployments.webCacheDir, "2.9999.0-stalled", async (webVersion) => {
      const { manager, events } = deployments.deploy("stalled", { readyWithinMs: 4_000, webVersion });
      const user = await createTestUser(deployments.admin);
      const starting = manager.connect(user.record.id);
      const channel = manager.get(user.record.id)!;
      await expect(starting).rejects.toThrow(); // the start ends with its browser
      await channel.whenClosed();
      expect([channel.status, channel.browserPid, manager.get(user.record.id)]).toEqual(["disconnected", null, undefined]);
      expect(await historyOf(events, user.record.id)).toContain("stale_closed");
    });
  });

  it("lets a user's disconnect end a start that hangs at once, without waiting for the deadline", async () => {
    await withStalledWebVersion(deployments.webCacheDir, "2.9999.2-stalled", async (webVersion) => {
      const { manager } = deployments.deploy("stalled-disconnect", { webVersion }); // no deadline at all
      const user = await createTestUser(deployments.admin);
      const starting = manager.connect(user.record.id);
      const channel = manager.get(user.record.id)!;
      await expect.poll(() => channel.browserPid, { timeout: 10_000 }).not.toBeNull(); // the page is loading, for ever
      await manager.disconnect(user.record.id);
      await expect(starting).rejects.toThrow();
      expect([channel.status, channel.browserPid, manager.get(user.record.id)]).toEqual(["disconnected", null, undefined]);
    });
  }, 20_000); // waited out, the start would end only after whatsapp-web.js's own 30 s

  it("gives a client whose phone has just scanned a fresh budget for its first sync", async () => {
    const { manager } = deployments.deploy("slow-sync", { readyWithinMs: 4_000 });
    const user = await createTestUser(deployments.admin);
    const channel = await manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    await delay(Math.max(0, channel.startedAt.getTime() + 2_500 - Date.now())); // most of the budget gone
    const archived = nextArchive(channel);
    // The first sync takes 4 s: ready comes 6.5 s after the start, past the first budget.
    await phone(channel, "pair", { syncDelayMs: 4_000 });
    // Past the first budget, the cleanup cron's sweep of clients not ready in time leaves it too.
    await expect.poll(() => channel.syncingNewLink, { timeout: 6_000, interval: 50 }).toBe(true);
    expect(Date.now() - channel.startedAt.getTime()).toBeGreaterThan(4_000);
    expect(await manager.cleanupStaleConnections(4_000)).toEqual([]);
    await waitForStatus(channel, "ready", 10_000);
    await archived; // the new link is stored
    expect(manager.get(user.record.id)).toBe(channel);
    await manager.stopAll();
  });

  it("ends only once a restore under way has finished, so a new start never has its profile swapped away", async () => {
    const source = deployments.deploy("restore-source");
    const user = await createTestUser(deployments.admin);
    await connectPaired(source.manager, user.record.id);
    await source.manager.stopAll(); // a stored session to restore
    // The next instance downloads it slowly (3 s) and gives up on ready after 1 s: mid-restore.
    const { proxy, ...slow } = await deployments.behindProxy("slow-restore", 30_000, undefined, { readyWithinMs: 1_000 });
    try {
      proxy.slowResponses("GET /api/files/", 3_000);
      const starting = slow.manager.connect(user.record.id).catch(() => {});
      const channel = slow.manager.get(user.record.id)!;
      await channel.whenClosed();
      // Closed only now: the restore is over, its profile whole and swapped in, no staging left.
      expect(existsSync(path.join(channel.sessionDir, VERSION_MARKER))).toBe(true);
      expect(readdirSync(path.dirname(channel.sessionDir))).toEqual([path.basename(channel.sessionDir)]);
      await starting;
    } finally {
      await proxy.close();
    }
  });

  it("leaves a client that got ready alone", async () => {
    const { manager } = deployments.deploy("linked", { readyWithinMs: 4_000 });
    const user = await createTestUser(deployments.admin);
    const channel = await connectPaired(manager, user.record.id);
    await delay(Math.max(0, channel.startedAt.getTime() + 5_000 - Date.now())); // past the limit, from its start
    expect([channel.status, manager.get(user.record.id)]).toEqual(["ready", channel]);
    await manager.stopAll();
  });
});
