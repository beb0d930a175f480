import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { newArchiver } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { createTestUser, setArchiveMaxSize, startIsolatedPocketBase } from "../../helpers/pocketbase";
import { emulatorDeployments, phone, waitForStatus } from "../../helpers/whatsapp-runtime";

describe("a running session whose archive PocketBase would not store", () => {
  const deployments = emulatorDeployments("wavault-save-failing-");

  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  beforeAll(async () => {
    // A PocketBase of its own whose archive field stores at most 1 KB: the emulator's
    // profile archives to more, as a grown profile would.
    pocketbase = await startIsolatedPocketBase({ SESSION_ARCHIVE_MAX_BYTES: "1024" });
    admin = await pocketbase.admin();
  });
  afterAll(async () => {
    await pocketbase?.dispose();
  });

  it("never uploads it, says so once in the history, in the status, in health and in the disconnect's answer", async () => {
    const user = await createTestUser(admin);
    const userId = user.record.id;
    const { manager, store, events, runtime } = deployments.deploy("small-limit", { admin });
    const channel = await manager.connect(userId);
    await waitForStatus(channel, "qr_ready");
    await phone(channel, "pair");
    await waitForStatus(channel, "ready");
    await expect.poll(() => channel.archiveFailure?.code, { timeout: 30_000 }).toBe("archive_over_store_limit");

    // Tried again (the interval's save): still failing, still one event.
    expect(await channel.archiveSessionToDatabase("interval")).toBeNull();
    expect(store.counters.uploads).toBe(0);
    await channel.statusRecorded();
    await expect
      .poll(async () => (await events.list(userId, 50)).filter((event) => event.event === "archive_failed").map((event) => event.data), { timeout: 30_000 })
      .toEqual([{ code: "archive_over_store_limit", reason: "ready" }]);

    const service = new UserSessionService(runtime);
    const status = await service.status(userId);
    expect(status).toMatchObject({ status: "ready", archive: null, archiveError: { code: "archive_over_store_limit" } });
    expect(Date.parse(status.archiveError!.since)).toBeLessThanOrEqual(Date.now());
    const env = parseEnv({
      POCKETBASE_URL: pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    });
    expect((await getWhatsAppHealth(env, runtime)).archiveFailing).toBe(1);

    // The final archive of the stop fails too: the answer says the stored session lags behind.
    const stopped = await service.disconnect(userId);
    expect(stopped).toMatchObject({ status: "disconnected", archive: null, archiveError: { code: "archive_over_store_limit" } });
    expect(store.counters.uploads).toBe(0);
    expect((await getWhatsAppHealth(env, runtime)).archiveFailing).toBe(0);
  });

  it("stores larger archives as soon as an operator raises the archive field's limit: the upload route's body limit follows it", async () => {
    // As an operator would in PocketBase's dashboard (with --automigrate=false, no
    // migration file is written for it). The route's body limit came from the
    // SESSION_ARCHIVE_MAX_BYTES PocketBase started with, 1 KB + 1 MiB here.
    await setArchiveMaxSize(admin, 4 * 1024 * 1024);

    const user = await createTestUser(admin);
    const profile = await mkdtemp(path.join(os.tmpdir(), "wavault-raised-limit-"));
    try {
      await writeFakeProfile(profile);
      const blob = randomBytes(2 * 1024 * 1024); // stored as it is: the archive is over 2 MiB
      const blobFile = path.join(profile, "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.blob/1/00/1");
      await mkdir(path.dirname(blobFile), { recursive: true });
      await writeFile(blobFile, blob);
      const archiver = newArchiver();
      const archive = await archiver.archiveSession(profile);
      expect(archive.sizeBytes).toBeGreaterThan(2 * 1024 * 1024);

      const store = new DatabaseSessionStore(admin, archiver, { instanceId: "raised-limit", memoryCacheBytes: 0 });
      const lease = await new SessionLease(admin, { instanceId: "raised-limit", ttlMs: 30_000 }).claim(user.record.id);
      await store.saveSession(user.record.id, archive, undefined, {}, lease);
      const restored = path.join(profile, "restored");
      expect(await store.loadSession(user.record.id, restored)).not.toBeNull();
      expect((await readFile(path.join(restored, "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.blob/1/00/1"))).equals(blob)).toBe(true);

      // A limit of 0 is PocketBase's own default for a file field, 5 MiB: refused before the upload.
      await setArchiveMaxSize(admin, 0);
      await rm(restored, { recursive: true });
      await writeFile(blobFile, randomBytes(6 * 1024 * 1024));
      const tooLarge = await archiver.archiveSession(profile);
      const unlimited = new DatabaseSessionStore(admin, archiver, { instanceId: "raised-limit", memoryCacheBytes: 0 });
      await expect(unlimited.saveSession(user.record.id, tooLarge, undefined, {}, lease)).rejects.toMatchObject({ code: "archive_over_store_limit", maxBytes: 5 * 1024 * 1024 });
      expect(unlimited.counters.uploads).toBe(0);
    } finally {
      await rm(profile, { recursive: true, force: true });
    }
  });
});
