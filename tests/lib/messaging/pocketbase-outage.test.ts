import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type PocketBase from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { SessionLease, SessionLeasedElsewhereError, SessionNotWantedError } from "../../../src/lib/messaging/session-lease";
import { readSessionSummary } from "../../../src/lib/messaging/session-summary";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import type { startPartitionProxy } from "../../helpers/partition-proxy";
import { createTestUser, testPocketBase } from "../../helpers/pocketbase";
import { browserProcesses, closed, connectPaired, emulatorDeployments, type newRuntime, waitForStatus } from "../../helpers/whatsapp-runtime";

/**
 * An instance that loses touch with PocketBase (its traffic goes through a proxy the
 * test can break): it gives its sessions up before their leases lapse, starts them again
 * when PocketBase answers, and keeps a healthy client through a slow upload.
 */
describe("a WhatsApp runtime cut off from PocketBase, against the emulator", () => {
  const deployments = emulatorDeployments("wavault-outage-");
  let admin: PocketBase;
  const runtime = (name: string) => deployments.deploy(name);
  const behindProxy = deployments.behindProxy;

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

  beforeAll(() => {
    admin = deployments.admin;
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
      // Its browser is gone before the lease is released (then another instance may start one).
      expect(browserProcesses(deaf.sessionDir(user.record.id), "main")).toEqual([]);
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

  it("holds its lease through a logout that waits for a slow upload: no other instance starts the session meanwhile", async () => {
    // A 6 s lease (given up after 5 s without a renewal); every archive upload takes 7 s.
    const { proxy, ...slow } = await behindProxy("logout-slow", 6_000);
    // Another instance's resume: it claims only a session marked to keep running whose lease has lapsed.
    const heir = new SessionLease(admin, { instanceId: "logout-heir", ttlMs: 6_000 });
    try {
      const user = await createTestUser(admin);
      const userId = user.record.id;
      proxy.slowRequests("POST /api/wavault/sessions/archive", 7_000);
      const channel = await connectPaired(slow.manager, userId);
      // A changed profile: the next archive uploads (for 7 s), and the logout waits for it.
      await writeFile(path.join(channel.sessionDir, "Default/Local Storage/leveldb/000009.log"), randomBytes(4096));
      const saving = channel.archiveSessionToDatabase("interval");
      await delay(300);
      const loggingOut = new UserSessionService(slow.runtime).logout(userId);
      // Refused while the logout runs (leased here), and once it is done (no session to resume).
      for (let waited = 0; waited < 8_000; waited += 1_000) {
        const refusal = await heir.claim(userId, { onlyIfKeepRunning: true }).then(() => null, (error: unknown) => error);
        expect(refusal instanceof SessionLeasedElsewhereError || refusal instanceof SessionNotWantedError, "another instance claimed the session during the logout").toBe(true);
        await delay(1_000);
      }
      await saving;
      expect(await loggingOut).toMatchObject({ status: "disconnected", archive: null, keepRunning: false });
      expect(await admin.collection("whatsapp_sessions").getList(1, 1, { filter: `user = "${userId}"` })).toMatchObject({ totalItems: 0 });
    } finally {
      await slow.manager.stopAll();
      await proxy.close();
    }
  });

  /** The configuration a health probe reads: PocketBase pinged at `pocketbaseUrl`. */
  const healthEnv = (pocketbaseUrl: string) =>
    parseEnv({
      POCKETBASE_URL: pocketbaseUrl,
      POCKETBASE_ADMIN_EMAIL: testPocketBase().adminEmail,
      POCKETBASE_ADMIN_PASSWORD: testPocketBase().adminPassword,
      SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    });

  it("refuses a disconnect while PocketBase is down, and leaves the client running, so the user's stop is never undone by a resume", async () => {
    const { proxy, ...instance } = await behindProxy("disconnect-down", 60_000);
    const user = await createTestUser(admin);
    const channel = await connectPaired(instance.manager, user.record.id);
    await channel.statusRecorded();
    await proxy.close(); // PocketBase refuses this instance's connections now

    await expect(new UserSessionService(instance.runtime).disconnect(user.record.id)).rejects.toMatchObject({ code: "pocketbase_unavailable" });
    expect(channel.status).toBe("ready");
    expect(instance.manager.get(user.record.id)).toBe(channel);
    await instance.manager.stopAll();
  });

  it("reports itself unhealthy within seconds while PocketBase hangs, rather than answering late", async () => {
    const { proxy, runtime: hung } = await behindProxy("hung-health", 60_000);
    try {
      const env = healthEnv(proxy.url); // the ping hangs too
      proxy.partition();
      // Within the test's 10 s: each part has the ping's 3 s, not the requests' 30.
      const health = await getWhatsAppHealth(env, hung);
      expect(health).toMatchObject({ healthy: false, pocketbase: { reachable: false }, storage: null, restore: null, waitingToResume: null });
    } finally {
      await proxy.close();
    }
  }, 10_000);

  it("stays healthy while PocketBase is slow but answers: a late reading gives way to the last good one", async () => {
    const { proxy, runtime: slow } = await behindProxy("slow-health", 60_000);
    try {
      const env = healthEnv(admin.baseURL); // the ping goes straight to PocketBase, and answers
      const first = await getWhatsAppHealth(env, slow);
      expect(first).toMatchObject({ healthy: true, storage: { totalSessions: expect.any(Number) } });
      await delay(10_500); // the readings' 10 s are over: the next call reads again
      proxy.slowResponses("GET /api/collections/", 6_000); // every record read now answers in 6 s
      const second = await getWhatsAppHealth(env, slow);
      expect(second).toMatchObject({ healthy: true, storage: first.storage, waitingToResume: first.waitingToResume });
    } finally {
      await proxy.close();
    }
  }, 30_000);
});
