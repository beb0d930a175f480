import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import { holdLease } from "../../../src/lib/messaging/held-lease";
import { LeaseLostError, SessionLease, SessionLeasedElsewhereError, SessionNotWantedError } from "../../../src/lib/messaging/session-lease";
import { newArchiver } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { adminClient, createTestUser } from "../../helpers/pocketbase";

describe("SessionLease over the PocketBase hook routes", () => {
  let admin: PocketBase;
  let dir: string;
  const archiver = newArchiver();
  const lease = (instanceId: string, ttlMs = 60_000) => new SessionLease(admin, { instanceId, ttlMs });
  const store = (instanceId: string) => new DatabaseSessionStore(admin, archiver, { instanceId, memoryCacheBytes: 0 });

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-lease-"));
    await writeFakeProfile(path.join(dir, "profile"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("holdLease keeps a tool's lease past its TTL until released", async () => {
    const user = await createTestUser(admin);
    const held = await holdLease(lease("tool", 600), user.record.id); // renewed every 200 ms
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // well past the TTL: no event to await
    await expect(lease("instance-a").claim(user.record.id)).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
    await held.release();
    expect((await lease("instance-a").claim(user.record.id)).owner).toMatch(/^instance-a\//);
  });

  it("counts a running session's renewals as activity (last_active), and a tool's held with keepLastActive not", async () => {
    const sessions = admin.collection("whatsapp_sessions");
    const longAgo = "2026-01-02 03:04:05.000Z";
    const renewedBy = async (hold: (userId: string) => Promise<{ release(): Promise<void> }>) => {
      const user = await createTestUser(admin);
      const held = await hold(user.record.id);
      const record = await sessions.getFirstListItem(`user = "${user.record.id}"`);
      await sessions.update(record.id, { last_active: longAgo });
      await new Promise((resolve) => setTimeout(resolve, 700)); // renewed every 200 ms: no event to await
      await held.release();
      return (await sessions.getOne(record.id)).last_active as string;
    };
    expect(await renewedBy((userId) => holdLease(lease("reencrypt", 600), userId, { keepLastActive: true }))).toBe(longAgo);
    expect(await renewedBy((userId) => holdLease(lease("tool", 600), userId))).not.toBe(longAgo);
  });

  it("lets exactly one of two instances claim a session at once", async () => {
    const user = await createTestUser(admin);
    const results = await Promise.allSettled([lease("instance-a").claim(user.record.id), lease("instance-b").claim(user.record.id)]);
    const won = results.filter((result) => result.status === "fulfilled");
    const lost = results.filter((result) => result.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(SessionLeasedElsewhereError);
  });

  it("never shares a lease between two processes given the same INSTANCE_ID", async () => {
    const user = await createTestUser(admin);
    await lease("same-id").claim(user.record.id);
    await expect(lease("same-id").claim(user.record.id)).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
  });

  it("keeps the lease for its owner: a second claim and renewals keep the generation", async () => {
    const user = await createTestUser(admin);
    const a = lease("instance-a");
    const first = await a.claim(user.record.id);
    expect(first.generation).toBeGreaterThan(0);
    expect((await a.claim(user.record.id)).generation).toBe(first.generation);
    const renewed = await a.renew(first);
    expect(renewed.generation).toBe(first.generation);
    expect(renewed.expiresAt.getTime()).toBeGreaterThanOrEqual(first.expiresAt.getTime());
  });

  it("lets another instance take over an expired lease, with a new generation; the old owner has lost it", async () => {
    const user = await createTestUser(admin);
    const old = await lease("instance-a", 300).claim(user.record.id);
    await expect(lease("instance-b").claim(user.record.id)).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
    await new Promise((resolve) => setTimeout(resolve, 400)); // let the 300 ms lease lapse
    const taken = await lease("instance-b").claim(user.record.id);
    expect(taken.owner).toMatch(/^instance-b\//);
    expect(taken.generation).toBeGreaterThan(old.generation);
    await expect(lease("instance-a").renew(old)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it("never takes a lease on a deleted session record for a lease on the record that replaced it", async () => {
    const user = await createTestUser(admin);
    const instance = lease("instance-a"); // one process: the same owner before and after
    const old = await instance.claim(user.record.id);
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    await admin.collection("whatsapp_sessions").delete(record.id); // a logout, or the cleanup
    const current = await instance.claim(user.record.id);

    expect(current.generation).toBeGreaterThan(old.generation);
    await expect(instance.renew(old)).rejects.toBeInstanceOf(LeaseLostError);
    const archive = await archiver.archiveSession(path.join(dir, "profile"));
    await expect(store("instance-a").saveSession(user.record.id, archive, undefined, {}, old)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await store("reader").hasSession(user.record.id)).toBe(false);
  });

  it("rejects a stale owner's upload and keeps the newer archive", async () => {
    const user = await createTestUser(admin);
    const old = await lease("instance-a", 300).claim(user.record.id);
    const oldArchive = await archiver.archiveSession(path.join(dir, "profile"));
    await store("instance-a").saveSession(user.record.id, oldArchive, undefined, {}, old);

    await new Promise((resolve) => setTimeout(resolve, 400));
    const current = await lease("instance-b").claim(user.record.id);
    await writeFile(path.join(dir, "profile", "Default/Local Storage/leveldb/000003.log"), "newer login");
    const newer = await archiver.archiveSession(path.join(dir, "profile"));
    await store("instance-b").saveSession(user.record.id, newer, undefined, {}, current);

    await expect(store("instance-a").saveSession(user.record.id, oldArchive, undefined, {}, old)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    const loaded = await store("reader").loadSession(user.record.id, path.join(dir, "restored"));
    expect(loaded?.sha256).toBe(newer.sha256);
  });

  it("claims for a resume only a session marked to keep running with an archive, and creates no record", async () => {
    const user = await createTestUser(admin);
    const userId = user.record.id;
    const resume = () => lease("resumer").claim(userId, { onlyIfKeepRunning: true });
    await expect(resume()).rejects.toBeInstanceOf(SessionNotWantedError); // no record
    expect(await store("reader").hasSession(userId)).toBe(false);
    await expect(admin.collection("whatsapp_sessions").getFirstListItem(`user = "${userId}"`)).rejects.toMatchObject({ status: 404 });

    const owner = lease("instance-a");
    const held = await owner.claim(userId);
    await store("instance-a").recordStatus(held, "ready", { keepRunning: true });
    await owner.release(held);
    await expect(resume()).rejects.toBeInstanceOf(SessionNotWantedError); // marked, but nothing stored

    const again = await owner.claim(userId);
    await store("instance-a").saveSession(userId, await archiver.archiveSession(path.join(dir, "profile")), undefined, {}, again);
    await store("instance-a").recordStatus(again, "disconnected", { keepRunning: false }); // the user stopped it
    await owner.release(again);
    await expect(resume()).rejects.toBeInstanceOf(SessionNotWantedError);

    const last = await owner.claim(userId);
    await store("instance-a").recordStatus(last, "disconnected", { keepRunning: true });
    // Marked, but its lease is live: not even its holder's own resume takes it.
    await expect(owner.claim(userId, { onlyIfKeepRunning: true })).rejects.toBeInstanceOf(SessionLeasedElsewhereError);
    await owner.release(last);
    expect((await resume()).owner).toMatch(/^resumer\//);
  });

  it("claims for a tool working on the stored archive only a session that has one, and creates no record", async () => {
    const user = await createTestUser(admin);
    const userId = user.record.id;
    const tool = () => lease("reencrypt").claim(userId, { onlyIfArchived: true });
    await expect(tool()).rejects.toBeInstanceOf(SessionNotWantedError); // no record (deleted since a list was read, say)
    await expect(admin.collection("whatsapp_sessions").getFirstListItem(`user = "${userId}"`)).rejects.toMatchObject({ status: 404 });

    const owner = lease("instance-a");
    const held = await owner.claim(userId); // a record, but nothing stored
    await owner.release(held);
    await expect(tool()).rejects.toBeInstanceOf(SessionNotWantedError);

    const again = await owner.claim(userId);
    await store("instance-a").saveSession(userId, await archiver.archiveSession(path.join(dir, "profile")), undefined, {}, again);
    await owner.release(again);
    expect((await tool()).owner).toMatch(/^reencrypt\//);
  });

  it("releases a lease so another instance can claim it at once", async () => {
    const user = await createTestUser(admin);
    const held = await lease("instance-a").claim(user.record.id);
    await lease("instance-a").release(held);
    expect((await lease("instance-b").claim(user.record.id)).owner).toMatch(/^instance-b\//);
  });

  it("records where the holder answers, tells it to the next claimant, and forgets it with the lease", async () => {
    const user = await createTestUser(admin);
    const urlOf = async () => (await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).lease_owner_url;
    const a = new SessionLease(admin, { instanceId: "instance-a", ttlMs: 300, ownerUrl: "http://10.0.0.5:3000" });
    const held = await a.claim(user.record.id);
    expect(await urlOf()).toBe("http://10.0.0.5:3000");
    const refused = await lease("instance-b").claim(user.record.id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SessionLeasedElsewhereError);
    expect((refused as SessionLeasedElsewhereError).ownerUrl).toBe("http://10.0.0.5:3000");

    await a.release(held);
    expect(await urlOf()).toBe("");
    // A takeover by an instance with no address does not inherit the old one's.
    await a.claim(user.record.id);
    await new Promise((resolve) => setTimeout(resolve, 400)); // past the TTL: no event to await
    await lease("instance-b").claim(user.record.id);
    expect(await urlOf()).toBe("");
    const byB = await lease("instance-c").claim(user.record.id).catch((error: unknown) => error);
    expect((byB as SessionLeasedElsewhereError).ownerUrl).toBeNull();
  });

  it("refuses an owner address that is not an http(s) origin", async () => {
    const user = await createTestUser(admin);
    for (const ownerUrl of ["ftp://10.0.0.5", "http://10.0.0.5:3000/path", "http://10.0.0.5?x=1", "10.0.0.5:3000"]) {
      const body = { user: user.record.id, owner: "instance-a/1", ttlMs: 60_000, ownerUrl };
      await expect(admin.send("/api/wavault/leases/claim", { method: "POST", body }), ownerUrl).rejects.toMatchObject({ status: 400 });
    }
  });

  it("notes a failed resume only under the lease it ran under: a newer claim makes the note stale", async () => {
    const user = await createTestUser(admin);
    const note = (generation: number, outcome = "failed") =>
      admin.send("/api/wavault/sessions/resume-note", {
        method: "POST",
        body: { user: user.record.id, generation, outcome, backoffMs: 60_000, maxBackoffMs: 90_000 },
      });
    const resumed = await lease("resumer").claim(user.record.id);
    await lease("resumer").release(resumed);
    expect(await note(resumed.generation)).toEqual({ applied: true, failures: 1 });
    const after = Date.parse((await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).resume_after);
    expect(after - Date.now()).toBeGreaterThan(50_000); // a minute, by PocketBase's clock
    expect(await note(resumed.generation)).toMatchObject({ failures: 2 }); // at most 90 s
    const capped = Date.parse((await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).resume_after);
    expect(capped - Date.now()).toBeLessThanOrEqual(90_000);

    // The user connects meanwhile: a late note of the old resume changes nothing.
    await lease("user-connect").claim(user.record.id);
    expect(await note(resumed.generation)).toEqual({ applied: false, failures: 0 });
    expect(await note(resumed.generation, "stayed_up")).toEqual({ applied: false, failures: 0 });
    expect((await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`)).resume_failures).toBe(2);
    await expect(note(resumed.generation, "gave_up")).rejects.toMatchObject({ status: 400 });
  });
});
