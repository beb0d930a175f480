import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import type { SessionArchive, SessionArchiver } from "../../../src/lib/messaging/session-archiver";
import { LeaseLostError, SessionLease } from "../../../src/lib/messaging/session-lease";
import { newArchiver } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";

// The store's writes under leases, and the lease-aware cleanup, over a PocketBase of its own.
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
