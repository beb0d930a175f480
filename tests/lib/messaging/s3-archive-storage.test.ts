import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";

import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import type { SessionArchiver } from "../../../src/lib/messaging/session-archiver";
import { LeaseLostError, SessionLease } from "../../../src/lib/messaging/session-lease";
import { sweepArchiveFiles } from "../../../src/lib/messaging/session-housekeeping";
import { SessionStoreError } from "../../../src/lib/messaging/session-store-errors";
import { newArchiver } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { startIsolatedPocketBase } from "../../helpers/pocketbase";
import { startS3Server, useS3Storage } from "../../helpers/s3-server";

const LOG = "Default/Local Storage/leveldb/000003.log";
const SESSIONS = "whatsapp_sessions";

/**
 * PocketBase's S3 storage setting, which moves every archive to object storage with no
 * change to wavault: a real S3 server (Versity's gateway) behind a proxy the tests can
 * slow down, and an isolated PocketBase whose settings point at it.
 */
describe("archives in S3 storage", () => {
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let s3: Awaited<ReturnType<typeof startS3Server>>;
  let proxy: Awaited<ReturnType<typeof startPartitionProxy>>;
  let admin: PocketBase;
  let archiver: SessionArchiver;
  let dir: string;
  let profile: string;

  const newStore = () => new DatabaseSessionStore(admin, archiver, { instanceId: "s3-test", memoryCacheBytes: 0 });
  const leases = (instanceId = "s3-test") => new SessionLease(admin, { instanceId, ttlMs: 60_000 });
  const newUser = async () => {
    const email = `s3-${Math.random().toString(36).slice(2)}@wavault.test`;
    return (await admin.collection("users").create({ email, password: "password-1234", passwordConfirm: "password-1234" })).id;
  };
  /** The status of a download of `userId`'s archive file through PocketBase, as the user `asUserId`. */
  const downloadAs = async (asUserId: string, userId: string) => {
    const { email } = await admin.collection("users").getOne(asUserId);
    const pb = new PocketBase(pocketbase.url);
    await pb.collection("users").authWithPassword(email, "password-1234");
    const record = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    const response = await fetch(pb.files.getURL(record, record.archive as string, { token: await pb.files.getToken() }));
    return response.status;
  };
  /** The objects the bucket holds for the user's session record. */
  const objectsOf = async (userId: string) => {
    const record = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    return s3.objects(`${record.collectionId}/${record.id}`);
  };
  const storedArchive = async (userId: string) =>
    (await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`)).archive as string;

  beforeAll(async () => {
    s3 = await startS3Server(inject("s3ServerBin"));
    proxy = await startPartitionProxy(s3.url);
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    await useS3Storage(admin, s3, proxy.url);
    archiver = newArchiver();
  });
  afterAll(async () => {
    await pocketbase?.dispose();
    await proxy?.close();
    await s3?.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-s3-store-"));
    profile = path.join(dir, "profile");
    await writeFakeProfile(profile);
  });
  afterEach(async () => {
    proxy.slowRequests("PUT", 0);
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps each archive as one object: saved, restored, replaced (the old object deleted) and deleted", async () => {
    const userId = await newUser();
    const lease = await leases().claim(userId);
    const first = await archiver.archiveSession(profile);
    await newStore().saveSession(userId, first, undefined, {}, lease);
    expect(await objectsOf(userId)).toEqual([expect.stringMatching(new RegExp(`/${await storedArchive(userId)}$`))]);

    await writeFile(path.join(profile, LOG), "a newer login");
    const second = await archiver.archiveSession(profile);
    await newStore().saveSession(userId, second, undefined, {}, lease);
    const objects = await objectsOf(userId);
    expect(objects).toEqual([expect.stringMatching(new RegExp(`/${await storedArchive(userId)}$`))]);

    const restored = path.join(dir, "restored");
    expect(await newStore().loadSession(userId, restored)).toMatchObject({ tier: "database", sha256: second.sha256 });
    expect(await readFile(path.join(restored, LOG), "utf8")).toBe("a newer login");
    // Still a protected file: its owner may download it, another user may not.
    expect(await downloadAs(userId, userId)).toBe(200);
    expect(await downloadAs(await newUser(), userId)).toBe(404);

    const record = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    await newStore().deleteSession(userId);
    // PocketBase deletes a deleted record's files in the background.
    await expect.poll(() => s3.objects(`${record.collectionId}/${record.id}`), { timeout: 10_000 }).toEqual([]);
  });

  it("the cleanup's sweep deletes an object no session names, and keeps the session's archive", async () => {
    const userId = await newUser();
    const lease = await leases().claim(userId);
    await newStore().saveSession(userId, await archiver.archiveSession(profile), undefined, {}, lease);
    const record = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    // What a PocketBase that died between storing a save's file and naming it leaves
    // behind, two hours ago; and a save's file stored just now, not yet named.
    const planted = path.join(dir, "planted");
    const folder = path.join(planted, record.collectionId, record.id);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, "session_unnamed.tar.gz.enc"), "left behind");
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60_000);
    await utimes(path.join(folder, "session_unnamed.tar.gz.enc"), twoHoursAgo, twoHoursAgo);
    await writeFile(path.join(folder, "session_under_way.tar.gz.enc"), "being saved");
    await s3.syncFrom(planted);
    expect(await objectsOf(userId)).toHaveLength(3);

    // PocketBase lists the bucket and deletes the old one only (by S3's LastModified).
    expect(await sweepArchiveFiles(admin)).toBe(1);
    const left = await objectsOf(userId);
    expect(left).toHaveLength(2);
    expect(left).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`/${record.archive}$`)), expect.stringMatching(/\/session_under_way\.tar\.gz\.enc$/)]));
    expect(await newStore().loadSession(userId, path.join(dir, "restored"))).not.toBeNull();
  });

  it("restores archives saved before the switch to S3 once the storage directory is copied into the bucket", async () => {
    const userId = await newUser();
    await admin.settings.update({ s3: { enabled: false } });
    let archive;
    try {
      const lease = await leases().claim(userId);
      archive = await archiver.archiveSession(profile);
      await newStore().saveSession(userId, archive, undefined, {}, lease);
    } finally {
      await useS3Storage(admin, s3, proxy.url);
    }
    const restore = () => newStore().loadSession(userId, path.join(dir, "restored"));
    await expect(restore()).rejects.toBeInstanceOf(SessionStoreError); // switched, not yet copied: the file is missing

    await s3.syncFrom(path.join(pocketbase.dataDir, "storage"));
    expect(await restore()).toMatchObject({ tier: "database", sha256: archive.sha256 });
  });

  it("a slow S3 write holds up no other session's lease renewal, claim or status write", async () => {
    const [slowUser, otherUser, newcomer] = [await newUser(), await newUser(), await newUser()];
    const instance = leases();
    const slowLease = await instance.claim(slowUser);
    const otherLease = await instance.claim(otherUser);
    const archive = await archiver.archiveSession(profile);

    proxy.slowRequests("PUT", 5_000);
    let uploadSettled = false;
    const upload = newStore()
      .saveSession(slowUser, archive, undefined, {}, slowLease)
      .finally(() => (uploadSettled = true));
    await expect.poll(() => proxy.heldRequests, { timeout: 10_000 }).toBe(1); // the object's PUT is under way

    // PocketBase writes one transaction at a time: none of these may wait for the upload.
    await instance.renew(otherLease);
    await instance.claim(newcomer);
    await admin.send("/api/wavault/sessions/status", {
      method: "POST",
      body: { user: otherUser, owner: otherLease.owner, generation: otherLease.generation, status: "ready" },
    });
    expect(uploadSettled).toBe(false);
    expect(proxy.heldRequests).toBe(1); // all of it while the object's PUT was still held

    await upload;
    expect(await newStore().loadSession(slowUser, path.join(dir, "restored"))).toMatchObject({ sha256: archive.sha256 });
  });

  it("a save whose lease is taken over during the S3 write changes nothing and leaves no object behind", async () => {
    const userId = await newUser();
    const first = leases("instance-a");
    const lease = await first.claim(userId);
    const kept = await archiver.archiveSession(profile);
    await newStore().saveSession(userId, kept, undefined, {}, lease);
    const keptObjects = await objectsOf(userId);

    await writeFile(path.join(profile, LOG), "a stale owner's login");
    const stale = await archiver.archiveSession(profile);
    proxy.slowRequests("PUT", 5_000);
    const upload = newStore().saveSession(userId, stale, undefined, {}, lease);
    await expect.poll(() => proxy.heldRequests, { timeout: 10_000 }).toBe(1);
    await first.release(lease);
    await leases("instance-b").claim(userId); // a new generation: the upload under way is fenced off

    await expect(upload).rejects.toBeInstanceOf(LeaseLostError);
    expect(await objectsOf(userId)).toEqual(keptObjects);
    const restored = path.join(dir, "restored");
    expect(await newStore().loadSession(userId, restored)).toMatchObject({ sha256: kept.sha256 });
  });

  it("a save whose session record is deleted and created again during the S3 write leaves the new record without it", async () => {
    const userId = await newUser();
    const instance = leases(); // the same process claims again: the same lease owner
    const lease = await instance.claim(userId);
    const old = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    const archive = await archiver.archiveSession(profile);
    proxy.slowRequests("PUT", 5_000);
    const upload = newStore().saveSession(userId, archive, undefined, {}, lease);
    await expect.poll(() => proxy.heldRequests, { timeout: 10_000 }).toBe(1);
    await admin.collection(SESSIONS).delete(old.id); // a logout, or the cleanup
    await instance.claim(userId);

    await expect(upload).rejects.toBeInstanceOf(LeaseLostError);
    const current = await admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`);
    expect(current.id).not.toBe(old.id);
    expect(current.archive).toBe("");
    await expect.poll(() => s3.objects(`${old.collectionId}/${old.id}`), { timeout: 10_000 }).toEqual([]);
  });

  it("a save S3 refuses fails with a typed error and leaves the previous archive restorable", async () => {
    const userId = await newUser();
    const lease = await leases().claim(userId);
    const kept = await archiver.archiveSession(profile);
    await newStore().saveSession(userId, kept, undefined, {}, lease);
    const keptObjects = await objectsOf(userId);

    await writeFile(path.join(profile, LOG), "a login S3 never gets");
    const refused = await archiver.archiveSession(profile);
    await useS3Storage(admin, { ...s3, bucket: "no-such-bucket" }, proxy.url);
    try {
      await expect(newStore().saveSession(userId, refused, undefined, {}, lease)).rejects.toBeInstanceOf(SessionStoreError);
    } finally {
      await useS3Storage(admin, s3, proxy.url);
    }

    expect(await objectsOf(userId)).toEqual(keptObjects);
    expect(await newStore().loadSession(userId, path.join(dir, "restored"))).toMatchObject({ sha256: kept.sha256 });
  });
});
