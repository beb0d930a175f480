import PocketBase, { ClientResponseError, type RecordModel } from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import { adminClient, createTestUser, testPocketBase, type TestUser } from "../helpers/pocketbase";

const sessions = (pb: PocketBase) => pb.collection("whatsapp_sessions");

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (error instanceof ClientResponseError) return error.status;
    throw error;
  }
}

async function createSessionRecord(admin: PocketBase, user: TestUser): Promise<RecordModel> {
  return sessions(admin).create({
    user: user.record.id,
    status: "ready",
    size_bytes: 5,
    archive: new File([Buffer.from(`archive of ${user.record.id}`)], "session.bin"),
  });
}

async function downloadArchive(pb: PocketBase, record: RecordModel): Promise<number> {
  const token = await pb.files.getToken();
  const response = await fetch(pb.files.getURL(record, record.archive as string, { token }));
  return response.status;
}

describe("who may touch a whatsapp_sessions record through PocketBase's API", () => {
  let admin: PocketBase;
  let alice: TestUser;
  let bob: TestUser;
  let aliceSession: RecordModel;
  let bobSession: RecordModel;

  beforeAll(async () => {
    admin = await adminClient();
    alice = await createTestUser(admin);
    bob = await createTestUser(admin);
    aliceSession = await createSessionRecord(admin, alice);
    bobSession = await createSessionRecord(admin, bob);
  });

  it("lets a user list and view their own record", async () => {
    const list = await sessions(alice.pb).getFullList();
    expect(list.map((r) => r.id)).toEqual([aliceSession.id]);
    expect((await sessions(alice.pb).getOne(aliceSession.id)).user).toBe(alice.record.id);
  });

  it("shows a user their own status and sizes, never the backend's lease and metadata", async () => {
    await sessions(admin).update(aliceSession.id, {
      lease_owner: "server-1.internal-4242/ab12cd34",
      lease_owner_url: "http://10.0.0.5:3000",
      lease_generation: 3,
      resume_failures: 2,
      resume_after: new Date(Date.now() + 60_000).toISOString(),
      lease_expires: new Date(Date.now() + 60_000).toISOString(),
      metadata: { key_id: "0123456789abcdef", saved_by: "server-1.internal-4242" },
    });
    for (const record of [await sessions(alice.pb).getOne(aliceSession.id), ...(await sessions(alice.pb).getFullList())]) {
      expect(record).toMatchObject({ user: alice.record.id, status: "ready", size_bytes: 5 });
      for (const field of ["lease_owner", "lease_owner_url", "lease_generation", "lease_expires", "metadata", "resume_failures", "resume_after"]) expect(record).not.toHaveProperty(field);
    }
    // Nor can a filter probe them.
    expect(await statusOf(sessions(alice.pb).getFullList({ filter: 'lease_owner ~ "server"' }))).toBe(400);
    expect(await statusOf(sessions(alice.pb).getFullList({ filter: 'lease_owner_url ~ "10."' }))).toBe(400);
    expect((await sessions(admin).getOne(aliceSession.id)).lease_owner).toBe("server-1.internal-4242/ab12cd34");
  });

  it("hides another user's record from list and view", async () => {
    const filtered = await sessions(alice.pb).getFullList({ filter: `user = "${bob.record.id}"` });
    expect(filtered).toEqual([]);
    expect(await statusOf(sessions(alice.pb).getOne(bobSession.id))).toBe(404);
  });

  it("refuses a user's create, even of their own record", async () => {
    const status = await statusOf(sessions(alice.pb).create({ user: bob.record.id, status: "ready" }));
    expect(status).toBe(403);
    const own = await statusOf(sessions(bob.pb).create({ user: bob.record.id, status: "ready" }));
    expect(own).toBe(403);
  });

  it("refuses a user's update and delete of another user's record and leaves it as it was", async () => {
    expect(await statusOf(sessions(alice.pb).update(bobSession.id, { status: "failed" }))).toBe(403);
    expect(await statusOf(sessions(alice.pb).delete(bobSession.id))).toBe(403);
    const after = await sessions(admin).getOne(bobSession.id);
    expect(after.status).toBe("ready");
    expect(after.updated).toBe(bobSession.updated);
  });

  it("refuses a user's update and delete of their own record (writes are the backend's)", async () => {
    expect(await statusOf(sessions(alice.pb).update(aliceSession.id, { status: "failed" }))).toBe(403);
    expect(await statusOf(sessions(alice.pb).delete(aliceSession.id))).toBe(403);
  });

  it("serves an archive file only to its owner", async () => {
    expect(await downloadArchive(alice.pb, aliceSession)).toBe(200);
    expect(await downloadArchive(alice.pb, bobSession)).toBe(404);
  });

  it("shows an anonymous request nothing", async () => {
    const anonymous = new PocketBase(testPocketBase().url);
    expect(await sessions(anonymous).getFullList()).toEqual([]);
    expect(await statusOf(sessions(anonymous).getOne(aliceSession.id))).toBe(404);
    const file = await fetch(anonymous.files.getURL(aliceSession, aliceSession.archive as string));
    expect(file.status).toBe(404);
  });

  it("deletes a user's session record when the user is deleted", async () => {
    const carol = await createTestUser(admin);
    const carolSession = await createSessionRecord(admin, carol);
    await admin.collection("users").delete(carol.record.id);
    expect(await statusOf(sessions(admin).getOne(carolSession.id))).toBe(404);
    expect(await statusOf(sessions(admin).getOne(aliceSession.id))).toBe(200);
  });
});
