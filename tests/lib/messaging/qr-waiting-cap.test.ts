import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { describeError } from "../../../src/lib/http/error-status";
import { ConnectionLimitError } from "../../../src/lib/messaging/connection-manager";
import { INSTANCES_COLLECTION } from "../../../src/lib/messaging/instance-registry";
import { ResumeShare } from "../../../src/lib/messaging/resume-share";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { createWhatsAppRuntime, maxWaitingForQr, stopRuntime } from "../../../src/lib/messaging/whatsapp-runtime";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../../fixtures/wa-web-emulator";
import { adminClient, configuredEnv, createTestUser } from "../../helpers/pocketbase";
import { phone, waitForStatus, withStalledWebVersion } from "../../helpers/whatsapp-runtime";

describe("the cap on clients waiting for a QR scan (MAX_WHATSAPP_QR_WAITING)", () => {
  let admin: PocketBase;
  let dir: string;

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-qr-cap-"));
    await writeEmulatorCache(path.join(dir, "web-cache"), { qrRotateMs: 400 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What an instance's record tells the others about it. */
  const standingOf = async (owner: string) => {
    const record = await admin.collection(INSTANCES_COLLECTION).getFirstListItem(admin.filter("owner = {:owner}", { owner }));
    return { accepting: record.accepting as boolean, acceptingNewLinks: record.accepting_new_links as boolean };
  };

  it("is half of MAX_WHATSAPP_CONNECTIONS (rounded up) unless set", () => {
    expect(maxWaitingForQr(configuredEnv({ MAX_WHATSAPP_CONNECTIONS: "5" }))).toBe(3);
    expect(maxWaitingForQr(configuredEnv({ MAX_WHATSAPP_CONNECTIONS: "1" }))).toBe(1);
    expect(maxWaitingForQr(configuredEnv({ MAX_WHATSAPP_CONNECTIONS: "5", MAX_WHATSAPP_QR_WAITING: "5" }))).toBe(5);
  });

  it("refuses a client for a new link past the cap, still starts stored sessions, and has room again once a phone scans", async () => {
    const env = configuredEnv({
      SESSION_TMP_DIR: path.join(dir, "sessions"),
      WA_WEB_VERSION: EMULATOR_WEB_VERSION,
      WA_WEB_CACHE_DIR: path.join(dir, "web-cache"),
      INSTANCE_ID: "qr-cap-instance",
      MAX_WHATSAPP_CONNECTIONS: "4",
      MAX_WHATSAPP_QR_WAITING: "1",
      // Heartbeats every 200 s: the record's changes below come from the room changes alone.
      SESSION_LEASE_TTL_MS: "600000",
    });
    const runtime = createWhatsAppRuntime(env, admin);
    const service = new UserSessionService(runtime);
    const share = new ResumeShare({ manager: runtime.manager, registry: runtime.registry, patienceMs: 60_000, failingWindowMs: 60_000 });
    const [linked, first, second] = [await createTestUser(admin), await createTestUser(admin), await createTestUser(admin)];
    try {
      // A session linked earlier and stopped: its archive is stored.
      const earlier = await runtime.manager.connect(linked.record.id);
      await waitForStatus(earlier, "qr_ready");
      await phone(earlier, "pair");
      await waitForStatus(earlier, "ready");
      await runtime.manager.disconnect(linked.record.id);

      expect((await service.connect(first.record.id)).status).toMatch(/^(initializing|qr_ready)$/);
      expect(runtime.manager.getStats().waitingForQr).toBe(1);
      const refused = await service.connect(second.record.id).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConnectionLimitError);
      expect(refused).toMatchObject({ limit: "qr", max: 1 });
      expect(describeError(refused)).toMatchObject({ code: "connection_limit", status: 503 });
      expect(runtime.manager.get(second.record.id)).toBeUndefined();
      // The other instances hear it: this one takes sessions, not new links (a connect
      // refused here for a new link goes only to a peer that takes them: peersWithRoom).
      share.announce(() => false);
      await runtime.registry.beat();
      expect(await standingOf(runtime.registry.owner)).toEqual({ accepting: true, acceptingNewLinks: false });

      // A stored session needs no scan: it starts, cap or not.
      await service.connect(linked.record.id);
      await waitForStatus(runtime.manager.get(linked.record.id)!, "ready");

      // The first user's phone scans: that client waits no more, and the next new link has room.
      const waiting = runtime.manager.get(first.record.id)!;
      await waitForStatus(waiting, "qr_ready");
      await phone(waiting, "pair");
      await waitForStatus(waiting, "ready");
      expect(runtime.manager.getStats().waitingForQr).toBe(0);
      // Heard at once, not at the next heartbeat (a third of the lease TTL, 20 s, away).
      await expect.poll(() => standingOf(runtime.registry.owner), { timeout: 5_000 }).toEqual({ accepting: true, acceptingNewLinks: true });
      expect((await service.connect(second.record.id)).status).toMatch(/^(initializing|qr_ready)$/);
      expect(runtime.manager.getStats()).toMatchObject({ waitingForQr: 1, activeConnections: 3 });
    } finally {
      await share.leave();
      await stopRuntime(runtime, 20_000);
    }
  });

  it("counts the client that replaces one still stopping as a new link too", async () => {
    // WhatsApp Web that never loads: the clients stay in their start, showing no QR, so
    // only the connect's own word says they will wait for one.
    await withStalledWebVersion(path.join(dir, "web-cache"), "2.9999.2-stalled", async (webVersion) => {
      const env = configuredEnv({
        SESSION_TMP_DIR: path.join(dir, "stalled-sessions"),
        WA_WEB_VERSION: webVersion,
        WA_WEB_CACHE_DIR: path.join(dir, "web-cache"),
        INSTANCE_ID: "qr-cap-stalled",
        MAX_WHATSAPP_CONNECTIONS: "4",
        MAX_WHATSAPP_QR_WAITING: "1",
      });
      const runtime = createWhatsAppRuntime(env, admin);
      const service = new UserSessionService(runtime, { connectWaitMs: 100 });
      const [first, second] = [await createTestUser(admin), await createTestUser(admin)];
      try {
        await service.connect(first.record.id);
        const old = runtime.manager.get(first.record.id)!;
        expect(runtime.manager.getStats().waitingForQr).toBe(1);
        const stopping = runtime.manager.disconnect(first.record.id);
        expect(old.stopping).toBe(true);
        await service.connect(first.record.id); // waits for the old client to go, then starts anew
        await stopping;
        await expect
          .poll(() => {
            const current = runtime.manager.get(first.record.id);
            return current !== undefined && current !== old;
          }, { timeout: 30_000 })
          .toBe(true);
        expect(runtime.manager.getStats().waitingForQr).toBe(1);
        await expect(service.connect(second.record.id)).rejects.toMatchObject({ limit: "qr" });
      } finally {
        await stopRuntime(runtime, 20_000);
      }
    });
  });
});
