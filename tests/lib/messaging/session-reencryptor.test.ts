import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ArchiveDecryptError } from "../../../src/lib/messaging/archive-errors";
import { createKeyRing } from "../../../src/lib/messaging/archive-keys";
import { reencryptArchive } from "../../../src/lib/messaging/archive-reencryption";
import { DatabaseSessionStore } from "../../../src/lib/messaging/database-session-store";
import { readArchive } from "../../../src/lib/messaging/session-archiver";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { SessionReencryptor, type ReencryptionRow } from "../../../src/lib/messaging/session-reencryptor";
import { newArchiver } from "../../helpers/crafted-archive";
import { snapshotTree, writeFakeProfile } from "../../helpers/fake-profile";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";

const key = () => randomBytes(32).toString("base64");

describe("SessionReencryptor: every stored archive moved to the current key", () => {
  const [oldKey, newKey, strangerKey] = [key(), key(), key()];
  const ring = createKeyRing(newKey, [oldKey]); // the configuration after a rotation
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  let dir: string;
  const users: Record<"old" | "current" | "running" | "stranger", string> = { old: "", current: "", running: "", stranger: "" };
  const sessions = () => admin.collection("whatsapp_sessions");
  const recordOf = (userId: string) => sessions().getFirstListItem(`user = "${userId}"`);
  const reencryptor = () =>
    new SessionReencryptor({ pb: admin, keys: ring, leases: new SessionLease(admin, { instanceId: "reencrypt/test", ttlMs: 60_000 }), workDir: dir });
  const byUser = (rows: ReencryptionRow[]) => Object.fromEntries(rows.map((row) => [row.userId, row.action]));

  /** A user with an archive stored under `keys`. */
  const save = async (keys: ReturnType<typeof createKeyRing>) => {
    const user = await createTestUser(admin);
    const archive = await newArchiver(keys).archiveSession(path.join(dir, "profile"));
    await new DatabaseSessionStore(admin, newArchiver(keys), { instanceId: "before", memoryCacheBytes: 0 }).saveSession(user.record.id, archive);
    return user.record.id;
  };

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-reencrypt-"));
    await writeFakeProfile(path.join(dir, "profile"));
    users.old = await save(createKeyRing(oldKey));
    users.current = await save(createKeyRing(newKey));
    users.running = await save(createKeyRing(oldKey));
    users.stranger = await save(createKeyRing(strangerKey));
    await sessions().update((await recordOf(users.old)).id, { last_active: "2026-01-02 03:04:05.000Z" });
    await new SessionLease(admin, { instanceId: "busy-instance", ttlMs: 60_000 }).claim(users.running);
  }, 60_000);

  afterAll(async () => {
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("dry-runs without changing anything, then re-encrypts what it can and leaves the rest as it was", async () => {
    const before = Object.fromEntries(await Promise.all(Object.values(users).map(async (id) => [id, await recordOf(id)] as const)));

    const dryRun = await reencryptor().reencrypt({ execute: false, concurrency: 2 });
    expect(byUser(dryRun)).toEqual({ [users.old]: "reencrypt", [users.current]: "current", [users.running]: "reencrypt", [users.stranger]: "unknown_key" });
    for (const id of Object.values(users)) expect((await recordOf(id)).updated).toBe(before[id]!.updated);

    const run = await reencryptor().reencrypt({ execute: true, concurrency: 2 });
    expect(byUser(run)).toEqual({ [users.old]: "reencrypted", [users.current]: "current", [users.running]: "running", [users.stranger]: "unknown_key" });

    const after = await recordOf(users.old);
    expect(after.metadata).toMatchObject({ key_id: ring.current.id, reencrypted_from: createKeyRing(oldKey).current.id, raw_bytes: before[users.old]!.metadata.raw_bytes });
    expect(after.metadata.sha256).not.toBe(before[users.old]!.metadata.sha256);
    expect(after.archive).not.toBe(before[users.old]!.archive);
    expect(after.last_active).toBe("2026-01-02 03:04:05.000Z"); // not activity of the user's
    expect(after.lease_owner).toBe(""); // released
    // It restores with the new key alone (the old one can go), to the same profile.
    const restored = path.join(dir, "restored");
    const newOnly = new DatabaseSessionStore(admin, newArchiver(createKeyRing(newKey)), { instanceId: "after", memoryCacheBytes: 0 });
    expect(await newOnly.loadSession(users.old, restored)).toMatchObject({ tier: "database" });
    const original = await snapshotTree(path.join(dir, "profile"));
    const back = await snapshotTree(restored);
    for (const file of ["Default/Local Storage/leveldb/000003.log", "Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log"]) {
      expect(back[file], file).toBe(original[file]);
    }

    for (const id of [users.current, users.running, users.stranger]) {
      const record = await recordOf(id);
      expect([record.archive, record.metadata.sha256, record.metadata.key_id]).toEqual([before[id]!.archive, before[id]!.metadata.sha256, before[id]!.metadata.key_id]);
    }
    expect((await recordOf(users.running)).lease_owner).toMatch(/^busy-instance\//);

    const again = await reencryptor().reencrypt({ execute: true, concurrency: 1 });
    expect(byUser(again)[users.old]).toBe("current");
  });

  it("starts nothing once stopped (a signal): an archive under an old key not reached is reported stopped, under that key", async () => {
    const stopped = new AbortController();
    stopped.abort();
    const oldOne = await save(createKeyRing(oldKey));
    const before = await recordOf(oldOne);
    const rows = await reencryptor().reencrypt({ execute: true, concurrency: 2, signal: stopped.signal });
    expect(rows.find((row) => row.userId === oldOne)).toMatchObject({ action: "stopped", keyId: createKeyRing(oldKey).current.id });
    // What the list alone tells needs no work: those rows are what they would be.
    expect(rows.find((row) => row.userId === users.current)).toMatchObject({ action: "current" });
    expect(rows.find((row) => row.userId === users.stranger)).toMatchObject({ action: "unknown_key" });
    expect((await recordOf(oldOne)).archive).toBe(before.archive);
  });

  it("refuses an archive whose bytes were changed and leaves no new file behind", async () => {
    const archive = await newArchiver(createKeyRing(oldKey)).archiveSession(path.join(dir, "profile"));
    const bytes = await readArchive(archive);
    bytes[bytes.length - 40]! ^= 0x01;
    const out = path.join(dir, "flipped.wvlt");
    await expect(reencryptArchive((async function* () { yield bytes; })(), ring, out)).rejects.toBeInstanceOf(ArchiveDecryptError);
    expect(existsSync(out)).toBe(false);
    // An intact one re-encrypts to the current key.
    const intact = await reencryptArchive((async function* () { yield await readFile(archive.file); })(), ring, out, archive.sha256);
    expect(intact).toMatchObject({ keyId: ring.current.id, fromKeyId: createKeyRing(oldKey).current.id, sizeBytes: archive.sizeBytes });
  });
});
