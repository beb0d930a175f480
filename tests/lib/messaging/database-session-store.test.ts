import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { ArchiveCorruptError } from "../../../src/lib/messaging/archive-errors";
import { DatabaseSessionStore, VERSION_MARKER } from "../../../src/lib/messaging/database-session-store";
import type { SessionArchiver } from "../../../src/lib/messaging/session-archiver";
import { PocketBaseUnavailableError } from "../../../src/lib/messaging/session-store-errors";
import { createServiceClient } from "../../../src/lib/pocketbase/service-client";
import { newArchiver } from "../../helpers/crafted-archive";
import { startCuttingProxy } from "../../helpers/cutting-proxy";
import { snapshotTree, writeFakeProfile } from "../../helpers/fake-profile";
import {
  adminClient,
  createTestUser,
  startIsolatedPocketBase,
  testPocketBase,
  type TestUser,
} from "../../helpers/pocketbase";

const LOG = "Default/Local Storage/leveldb/000003.log";

describe("DatabaseSessionStore over a real PocketBase", () => {
  let admin: PocketBase;
  let archiver: SessionArchiver;
  let dir: string;
  let profile: string;
  let user: TestUser;
  const newStore = (pb: PocketBase = admin, memoryCacheBytes = 16 * 1024 * 1024) =>
    new DatabaseSessionStore(pb, archiver, { instanceId: "test-instance", memoryCacheBytes });

  beforeAll(async () => {
    admin = await adminClient();
    archiver = newArchiver();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-store-"));
    profile = path.join(dir, "profile");
    await writeFakeProfile(profile);
    user = await createTestUser(admin);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("saves an archive into the protected file field with its metadata", async () => {
    const archived = await archiver.archiveSession(profile);
    await newStore().saveSession(user.record.id, archived, "+4915112345678", { reason: "ready" });

    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(record).toMatchObject({
      compressed: true,
      size_bytes: archived.sizeBytes,
      phone_number: "+4915112345678",
      metadata: {
        sha256: archived.sha256,
        raw_bytes: archived.rawBytes,
        file_count: archived.fileCount,
        compression_ratio: archived.compressionRatio,
        format_version: 1,
        key_id: archived.keyId,
        saved_by: "test-instance",
        reason: "ready",
      },
    });
    expect(record.archive).toMatch(/\.wvlt$/);
    expect(Date.now() - new Date(record.last_active).getTime()).toBeLessThan(60_000);
    expect(await newStore().hasSession(user.record.id)).toBe(true);
  });

  it("loads a saved session into a fresh directory from PocketBase, then from disk without a download", async () => {
    const archived = await archiver.archiveSession(profile);
    await newStore().saveSession(user.record.id, archived);

    const store = newStore(admin, 0); // no memory tier: the first load must download
    const target = path.join(dir, "restored");
    const first = await store.loadSession(user.record.id, target);
    expect(first).toMatchObject({ tier: "database", sha256: archived.sha256, sizeBytes: archived.sizeBytes });
    expect(store.counters.downloads).toBe(1);
    expect(await readFile(path.join(target, LOG), "utf8")).toBe(await readFile(path.join(profile, LOG), "utf8"));
    expect((await readFile(path.join(target, VERSION_MARKER), "utf8")).trim()).toBe(archived.sha256);

    const second = await store.loadSession(user.record.id, target);
    expect(second?.tier).toBe("file");
    expect(store.counters.downloads).toBe(1);
  });

  it("serves a recent archive from memory without a download", async () => {
    const store = newStore();
    const archived = await archiver.archiveSession(profile);
    await store.saveSession(user.record.id, archived);
    const loaded = await store.loadSession(user.record.id, path.join(dir, "elsewhere"));
    expect(loaded?.tier).toBe("memory");
    expect(store.counters.downloads).toBe(0);
  });

  it("downloads again when PocketBase holds a newer version than the disk", async () => {
    const store = newStore(admin, 0);
    const target = path.join(dir, "restored");
    await store.saveSession(user.record.id, await archiver.archiveSession(profile));
    await store.loadSession(user.record.id, target);

    await writeFile(path.join(profile, LOG), "a newer login");
    const newer = await archiver.archiveSession(profile);
    await newStore().saveSession(user.record.id, newer);

    const loaded = await store.loadSession(user.record.id, target);
    expect(loaded).toMatchObject({ tier: "database", sha256: newer.sha256 });
    expect(store.counters.downloads).toBe(2);
    expect(await readFile(path.join(target, LOG), "utf8")).toBe("a newer login");
  });

  it("returns null for a user with no stored session", async () => {
    expect(await newStore().loadSession(user.record.id, path.join(dir, "none"))).toBeNull();
    expect(await newStore().hasSession(user.record.id)).toBe(false);
  });

  it("deletes a session: nothing to load afterwards", async () => {
    const store = newStore();
    await store.saveSession(user.record.id, await archiver.archiveSession(profile));
    expect(await store.deleteSession(user.record.id)).toBe(true);
    expect(await store.hasSession(user.record.id)).toBe(false);
    expect(await store.loadSession(user.record.id, path.join(dir, "gone"))).toBeNull();
    expect(await store.deleteSession(user.record.id)).toBe(false);
  });

  it("keeps the previous archive restorable when an upload is cut off midway", async () => {
    const good = await archiver.archiveSession(profile);
    await newStore().saveSession(user.record.id, good);

    // A new profile version with 2 MB of incompressible login data: an upload far
    // larger than what the proxy lets through on one connection.
    await writeFile(path.join(profile, "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000005.ldb"), randomBytes(2 << 20));
    const larger = await archiver.archiveSession(profile);
    const { url, adminEmail, adminPassword } = testPocketBase();
    const proxy = await startCuttingProxy(url, 256 * 1024);
    try {
      const throughProxy = await createServiceClient({ url: proxy.url, email: adminEmail, password: adminPassword });
      await expect(newStore(throughProxy).saveSession(user.record.id, larger)).rejects.toBeInstanceOf(
        PocketBaseUnavailableError,
      );
      expect(proxy.cuts).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }

    const loaded = await newStore(admin, 0).loadSession(user.record.id, path.join(dir, "after-failure"));
    expect(loaded).toMatchObject({ tier: "database", sha256: good.sha256 });
  });

  it("refuses a stored archive that was changed, and leaves the target as it was", async () => {
    const store = newStore(admin, 0);
    await store.saveSession(user.record.id, await archiver.archiveSession(profile));
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    await admin.collection("whatsapp_sessions").update(record.id, {
      archive: new File([randomBytes(4096)], "tampered.wvlt"),
    });

    const target = path.join(dir, "target");
    await writeFakeProfile(target);
    const before = await snapshotTree(target);
    await expect(store.loadSession(user.record.id, target)).rejects.toBeInstanceOf(ArchiveCorruptError);
    expect(await snapshotTree(target)).toEqual(before);
  });

  it("does not let a user token fetch another user's archive", async () => {
    await newStore().saveSession(user.record.id, await archiver.archiveSession(profile));
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    const intruder = await createTestUser(admin);
    const token = await intruder.pb.files.getToken();
    const response = await fetch(intruder.pb.files.getURL(record, record.archive, { token }));
    expect(response.status).toBe(404);
    const ownerToken = await user.pb.files.getToken();
    expect((await fetch(user.pb.files.getURL(record, record.archive, { token: ownerToken }))).status).toBe(200);
  });

  it("fails with PocketBaseUnavailableError when PocketBase cannot be reached", async () => {
    const unreachable = new PocketBase("http://127.0.0.1:1");
    await expect(newStore(unreachable).loadSession(user.record.id, path.join(dir, "x"))).rejects.toBeInstanceOf(
      PocketBaseUnavailableError,
    );
  });
});

describe("DatabaseSessionStore housekeeping", () => {
  let admin: PocketBase;
  let archiver: SessionArchiver;
  let dir: string;
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  const users: TestUser[] = [];

  beforeAll(async () => {
    // A PocketBase of its own: the totals below must be this test's alone.
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    archiver = newArchiver();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-store-cleanup-"));
    await writeFakeProfile(path.join(dir, "profile"));
  });
  afterAll(async () => {
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("deletes only sessions inactive past the retention and reports storage totals", async () => {
    const store = new DatabaseSessionStore(admin, archiver, { instanceId: "t", memoryCacheBytes: 0 });
    const archived = await archiver.archiveSession(path.join(dir, "profile"));
    for (let i = 0; i < 3; i++) {
      const user = await createTestUser(admin);
      users.push(user);
      await store.saveSession(user.record.id, archived);
    }
    const [stale, fresh, borderline] = users as [TestUser, TestUser, TestUser];
    const setLastActive = async (user: TestUser, daysAgo: number) => {
      const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
      await admin.collection("whatsapp_sessions").update(record.id, {
        last_active: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
      });
    };
    await setLastActive(stale, 45);
    await setLastActive(borderline, 29);

    // A larger archive, and a record with none (a user who never reached ready): the
    // totals count archives only, and the largest is the larger one.
    await writeFile(path.join(dir, "profile", LOG), randomBytes(64 * 1024));
    const larger = await archiver.archiveSession(path.join(dir, "profile"));
    const withLarger = await createTestUser(admin);
    await store.saveSession(withLarger.record.id, larger);
    const withoutArchive = await createTestUser(admin);
    await admin.collection("whatsapp_sessions").create({ user: withoutArchive.record.id, status: "qr_ready", last_active: new Date(Date.now() - 90 * 86_400_000).toISOString() });

    const stats = await store.getStorageStats();
    const total = archived.sizeBytes * 3 + larger.sizeBytes;
    expect(larger.sizeBytes).toBeGreaterThan(archived.sizeBytes + 60 * 1024);
    expect(stats).toMatchObject({
      totalSessions: 4,
      totalSizeBytes: total,
      averageSizeBytes: Math.round(total / 4),
      largestSizeBytes: larger.sizeBytes,
    });
    // The stale session's, not the archive-less record's 90 days.
    const oldest = new Date(stats.oldestLastActive!).getTime();
    expect(oldest).toBeLessThan(Date.now() - 44 * 86_400_000);
    expect(oldest).toBeGreaterThan(Date.now() - 46 * 86_400_000);
    await expect(withLarger.pb.send("/api/wavault/sessions/stats", {})).rejects.toMatchObject({ status: 403 });

    expect(await store.cleanupOldSessions(30)).toBe(2); // the stale one and the archive-less one
    expect(await store.hasSession(stale.record.id)).toBe(false);
    expect(await store.hasSession(fresh.record.id)).toBe(true);
    expect(await store.hasSession(borderline.record.id)).toBe(true);
    expect((await store.getStorageStats()).totalSessions).toBe(3);
  });
});
