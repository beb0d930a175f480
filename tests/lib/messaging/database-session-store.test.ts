import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { ArchiveCorruptError } from "../../../src/lib/messaging/archive-errors";
import { DatabaseSessionStore, VERSION_MARKER } from "../../../src/lib/messaging/database-session-store";
import type { SessionArchive, SessionArchiver } from "../../../src/lib/messaging/session-archiver";
import { LeaseLostError, SessionLease } from "../../../src/lib/messaging/session-lease";
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

describe("DatabaseSessionStore and leases", () => {
  let admin: PocketBase;
  let archiver: SessionArchiver;
  let dir: string;
  let archived: SessionArchive;
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  const store = () => new DatabaseSessionStore(admin, archiver, { instanceId: "cleanup", memoryCacheBytes: 0 });
  const lease = (ttlMs = 60_000) => new SessionLease(admin, { instanceId: "other-instance", ttlMs });
  const sessionOf = (userId: string) =>
    admin.collection("whatsapp_sessions").getFirstListItem(`user = "${userId}"`).catch(() => null);

  /** A user with a stored session last active `daysAgo` days ago. */
  const staleSession = async (daysAgo = 45): Promise<string> => {
    const user = await createTestUser(admin);
    await store().saveSession(user.record.id, archived);
    const record = (await sessionOf(user.record.id))!;
    await admin.collection("whatsapp_sessions").update(record.id, {
      last_active: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
    });
    return user.record.id;
  };

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    archiver = newArchiver();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-store-cleanup-lease-"));
    await writeFakeProfile(path.join(dir, "profile"));
    archived = await archiver.archiveSession(path.join(dir, "profile"));
  });
  afterAll(async () => {
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("records a status only under the lease that holds the session: a stale owner's write is refused", async () => {
    const user = await createTestUser(admin);
    const stale = await lease(1).claim(user.record.id);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const current = await lease().claim(user.record.id);
    expect(current.generation).toBeGreaterThan(stale.generation);

    await store().recordStatus(current, "ready", { phoneNumber: "+4915112345678" });
    await expect(store().recordStatus(stale, "disconnected")).rejects.toBeInstanceOf(LeaseLostError);
    expect(await sessionOf(user.record.id)).toMatchObject({ status: "ready", phone_number: "+4915112345678" });
  });

  it("never deletes a stale session whose lease is live, and deletes the archive file of one it deletes", async () => {
    const unleased = await staleSession();
    const leased = await staleSession();
    const lapsed = await staleSession();
    await lease().claim(leased);
    await lease(1).claim(lapsed);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const unleasedRecord = (await sessionOf(unleased))!;
    const file = path.join(pocketbase.dataDir, "storage", unleasedRecord.collectionId, unleasedRecord.id);
    expect(existsSync(file)).toBe(true);

    expect(await store().cleanupOldSessions(30)).toBe(2);
    expect(await sessionOf(unleased)).toBeNull();
    expect(await sessionOf(lapsed)).toBeNull();
    expect(await store().hasSession(leased)).toBe(true);
    await expect.poll(() => existsSync(file)).toBe(false);
  });

  it("keeps a quiet session that was running until its owner lost touch with PocketBase: renewals count as activity", async () => {
    const userId = await staleSession(); // nothing saved for 45 days: a session ready for weeks with nothing new
    const owner = lease(50);
    await owner.renew(await owner.claim(userId)); // its owner renews while it reaches PocketBase…
    await new Promise((resolve) => setTimeout(resolve, 60)); // …then cannot, and the lease lapses there

    await store().cleanupOldSessions(30);
    expect(await store().hasSession(userId)).toBe(true);
  });

  it("answers malformed lease requests with 400, not a lost lease or a stored oddity", async () => {
    const user = await createTestUser(admin);
    const held = await lease().claim(user.record.id);
    const send = (action: string, body: Record<string, unknown> | FormData) =>
      admin.send(`/api/wavault/${action}`, { method: "POST", body });
    const refusal = async (action: string, body: Record<string, unknown> | FormData) =>
      send(action, body).then(
        () => ({ status: 200, message: "", data: {} }),
        (error: { status: number; response: { message?: string; data?: Record<string, unknown> } }) => ({
          status: error.status,
          message: error.response.message ?? "",
          data: error.response.data ?? {},
        }),
      );
    const ids = { user: user.record.id, owner: held.owner, generation: held.generation };
    expect(await refusal("leases/claim", { user: user.record.id, owner: "x", ttlMs: 1e300 })).toMatchObject({ status: 400, message: expect.stringContaining("ttlMs") });
    expect(await refusal("leases/claim", { user: user.record.id, owner: { name: "x" }, ttlMs: 1000 })).toMatchObject({ status: 400, message: expect.stringContaining("owner") });
    expect(await refusal("leases/renew", { ...ids, generation: "abc", ttlMs: 1000 })).toMatchObject({ status: 400, message: expect.stringContaining("generation") });
    const upload = (fields: Record<string, string>, file = true) => {
      const form = new FormData();
      for (const [name, value] of Object.entries({ user: ids.user, owner: ids.owner, generation: String(ids.generation), size_bytes: "5", ...fields })) form.set(name, value);
      if (file) form.set("archive", new File([Buffer.from("bytes")], "a.wvlt"));
      return refusal("sessions/archive", form);
    };
    expect(await upload({ metadata: '{"sha256":"ab"}' }, false)).toMatchObject({ status: 400, message: expect.stringContaining('"archive" file') });
    expect(await upload({ metadata: '{"sha256":"ab"}', size_bytes: "6" })).toMatchObject({ status: 400, message: expect.stringContaining("size_bytes") });
    for (const metadata of ["5", "null", "[]", "{", '{"sha":"x"}']) {
      expect(await upload({ metadata }), metadata).toMatchObject({ status: 400, message: expect.stringContaining("metadata") });
    }
    // The archive file goes to storage before the fenced transaction, but the record is
    // still validated as a plain save would be (phone_number holds at most 32 characters).
    expect(await upload({ metadata: '{"sha256":"ab"}', phone_number: "1".repeat(33) })).toMatchObject({
      status: 400,
      data: { phone_number: expect.anything() },
    });
    // None of it touched the session, and the well-formed requests still work.
    expect(await sessionOf(user.record.id)).toMatchObject({ lease_owner: held.owner, lease_generation: held.generation, archive: "" });
    expect(await upload({ metadata: '{"sha256":"ab"}' })).toMatchObject({ status: 200 });
  });

  it("deletes through the hook route in batches of its limit, and refuses a bad request", async () => {
    const users = [await staleSession(), await staleSession(), await staleSession()];
    const cleanup = (body: Record<string, unknown>) =>
      admin.send<{ deleted: number; users: string[] }>("/api/wavault/sessions/cleanup", { method: "POST", body });
    const before = new Date(Date.now() - 30 * 86_400_000).toISOString();

    const first = await cleanup({ before, limit: 1 });
    expect(first.deleted).toBe(1);
    expect(users).toContain(first.users[0]);
    await expect(cleanup({ before: "not a date", limit: 1 })).rejects.toMatchObject({ status: 400 });
    await expect(cleanup({ before, limit: 0 })).rejects.toMatchObject({ status: 400 });
    const asUser = await createTestUser(admin);
    await expect(
      asUser.pb.send("/api/wavault/sessions/cleanup", { method: "POST", body: { before, limit: 1 } }),
    ).rejects.toMatchObject({ status: 403 });

    expect(await store().cleanupOldSessions(30)).toBe(2);
    for (const userId of users) expect(await sessionOf(userId)).toBeNull();
  });

  it("never leaves a user who claims the lease while the cleanup runs without a session record", async () => {
    const users: string[] = [];
    for (let i = 0; i < 30; i++) users.push(await staleSession());
    const filter = users.map((userId) => `user = "${userId}"`).join(" || ");
    const remaining = async () => (await admin.collection("whatsapp_sessions").getList(1, 1, { filter })).totalItems;

    const cleanup = store().cleanupOldSessions(30);
    // As soon as the first stale session is gone, every user still listed comes back.
    while ((await remaining()) === users.length) await new Promise((resolve) => setTimeout(resolve, 1));
    const claimed = await Promise.all(users.map((userId) => lease().claim(userId).then(() => userId, () => null)));
    await cleanup;

    // Whoever holds a lease now has a session record: none was deleted under a claim.
    for (const userId of claimed.filter((id): id is string => id !== null)) {
      const record = await sessionOf(userId);
      expect(record?.lease_owner, userId).toMatch(/^other-instance\//);
    }
  });
});
