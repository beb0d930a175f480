import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import { sweepArchiveFiles } from "../../../src/lib/messaging/session-housekeeping";
import { newArchiver } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";

const SESSIONS = "whatsapp_sessions";
const TWO_HOURS_AGO = new Date(Date.now() - 2 * 60 * 60_000);
const TEN_DAYS_AGO = new Date(Date.now() - 10 * 24 * 60 * 60_000);
const FORTY_DAYS_AGO = new Date(Date.now() - 40 * 24 * 60 * 60_000);

/**
 * The cleanup cron's sweep of archive files no session names (left by a PocketBase that
 * died between storing a save's file and naming it). Its own PocketBase, on local
 * storage: the test plants files in its data directory as such a crash leaves them.
 */
describe("sweepArchiveFiles on local storage", () => {
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  let dir: string;
  const archiver = newArchiver();
  const newStore = () => new DatabaseSessionStore(admin, archiver, { instanceId: "sweep-test", memoryCacheBytes: 0 });
  const storage = (...parts: string[]) => path.join(pocketbase.dataDir, "storage", ...parts);
  /** A file in storage, last modified at `at`. */
  const plant = async (at: Date, ...parts: string[]) => {
    const file = storage(...parts);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, "left behind");
    await utimes(file, at, at);
    return file;
  };

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-sweep-"));
    await writeFakeProfile(path.join(dir, "profile"));
  });
  afterAll(async () => {
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("deletes old files no session names, and never a current archive, a recent file or another collection's file", async () => {
    const store = newStore();
    const archive = await archiver.archiveSession(path.join(dir, "profile"));
    const [a, b] = [await createTestUser(admin), await createTestUser(admin)];
    await store.saveSession(a.record.id, archive);
    await store.saveSession(a.record.id, archive); // replaced: PocketBase deletes the first file itself
    const recordA = await admin.collection(SESSIONS).getFirstListItem(admin.filter("user = {:u}", { u: a.record.id }));
    const recordB = await store.saveSession(b.record.id, archive);
    const collection = recordA.collectionId;

    // B's archive was saved long ago and never changed since: it must stay.
    const currentB = storage(collection, recordB.id, recordB.archive as string);
    await utimes(currentB, TWO_HOURS_AGO, TWO_HOURS_AGO);
    const currentA = storage(collection, recordA.id, recordA.archive as string);
    // What crashes leave: a file stored for a save that never named it, and the file of a
    // session deleted long ago (a folder whose record is gone waits 30 days: see below).
    const unnamed = await plant(TWO_HOURS_AGO, collection, recordA.id, "session_unnamed.tar.gz.enc");
    const ofDeleted = await plant(FORTY_DAYS_AGO, collection, "deletedrecord01", "session_gone.tar.gz.enc");
    // A folder whose record the database does not know (a restored backup?), ten days old: kept.
    const unknown = await plant(TEN_DAYS_AGO, collection, "unknownrecord01", "session_only_copy.tar.gz.enc");
    // A save under way (stored, not yet named), and another collection's old file.
    const underWay = await plant(new Date(), collection, recordA.id, "session_under_way.tar.gz.enc");
    const users = (await admin.collections.getOne("users")).id;
    const foreign = await plant(TWO_HOURS_AGO, users, a.record.id, "avatar.png");

    expect(await sweepArchiveFiles(admin)).toBe(2);
    expect([unnamed, ofDeleted].map((file) => existsSync(file))).toEqual([false, false]);
    expect([currentA, currentB, underWay, unknown, foreign].map((file) => existsSync(file))).toEqual([true, true, true, true, true]);
    // Both sessions still restore from PocketBase.
    for (const user of [a, b]) expect(await newStore().loadSession(user.record.id, path.join(dir, `restored-${user.record.id}`))).not.toBeNull();
    expect(await sweepArchiveFiles(admin)).toBe(0);
  });

  it("leaves alone a folder whose record names a file storage does not hold (the database restored from an older backup)", async () => {
    const store = newStore();
    const user = await createTestUser(admin);
    const record = await store.saveSession(user.record.id, await archiver.archiveSession(path.join(dir, "profile")));
    // The backup named an archive since replaced (and deleted); the newer one, unnamed, is the only good copy.
    await rm(storage(record.collectionId, record.id, record.archive as string));
    const onlyGoodCopy = await plant(TWO_HOURS_AGO, record.collectionId, record.id, "session_newer.tar.gz.enc");
    expect(await sweepArchiveFiles(admin)).toBe(0);
    expect(existsSync(onlyGoodCopy)).toBe(true);
  });

  it("is for superusers only", async () => {
    const user = await createTestUser(admin);
    await expect(user.pb.send("/api/wavault/sessions/sweep-files", { method: "POST", body: { limit: 10 } })).rejects.toMatchObject({ status: 403 });
    await expect(admin.send("/api/wavault/sessions/sweep-files", { method: "POST", body: { limit: "many" } })).rejects.toMatchObject({ status: 400 });
  });
});
