import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createKeyRing } from "../../src/lib/messaging/archive-keys";
import { DatabaseSessionStore } from "../../src/lib/messaging/database-session-store";
import { hasValidSession } from "../../src/lib/messaging/session-archiver";
import { SessionLease } from "../../src/lib/messaging/session-lease";
import type { MigrationRow } from "../../src/lib/messaging/session-migrator";
import { writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { newArchiver } from "../helpers/crafted-archive";
import { createTestUser, startIsolatedPocketBase } from "../helpers/pocketbase";
import { runProjectScript, type ScriptRun } from "../helpers/run-script";
import { connectPaired, newRuntime, waitForStatus } from "../helpers/whatsapp-runtime";

type IsolatedPocketBase = Awaited<ReturnType<typeof startIsolatedPocketBase>>;

type Run = ScriptRun;

/** Runs the script as an operator would; `onLine` sees each progress line as it comes. */
function runScript(
  pocketbase: IsolatedPocketBase,
  key: string,
  args: string[],
  onLine?: (line: string, child: ChildProcess) => void,
  extraEnv: Record<string, string> = {},
): Promise<Run> {
  const env = {
    ...extraEnv,
    POCKETBASE_URL: pocketbase.url,
    POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
    POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
    SESSION_ENCRYPTION_KEY: key,
    SESSION_ENCRYPTION_OLD_KEYS: "",
  };
  return runProjectScript("migrate-whatsapp-sessions.ts", env, args, onLine);
}

const report = (run: Run) => JSON.parse(run.stdout) as { rows: MigrationRow[]; totals: Record<string, unknown> };
const rowOf = (run: Run, folder: string) => report(run).rows.find((row) => row.folder === folder)!;

/** Every path under `dir` with its size and mtime: equal before and after means untouched. */
async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const info = await stat(path.join(dir, name)).catch(() => null);
    lines.push(`${name} ${info?.size} ${info?.mtimeMs}`);
  }
  return lines;
}

describe("scripts/migrate-whatsapp-sessions.ts", () => {
  let dir: string;
  let pairedProfile: string;

  // One real LocalAuth session folder, made by whatsapp-web.js and Chromium against the
  // emulator (paired, then stopped); the tests copy it for each user.
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-"));
    const pocketbase = await startIsolatedPocketBase();
    try {
      const admin = await pocketbase.admin();
      const webCacheDir = path.join(dir, "web-cache");
      await writeEmulatorCache(webCacheDir, { qrRotateMs: 500 });
      const keyRing = createKeyRing(randomBytes(32).toString("base64"));
      const { manager } = newRuntime({ admin, keys: keyRing, sessionRoot: path.join(dir, "live"), webCacheDir });
      const user = await createTestUser(admin);
      try {
        await connectPaired(manager, user.record.id);
      } finally {
        await manager.stopAll(); // also when pairing failed: no browser outlives the run
      }
      pairedProfile = path.join(dir, "live", `session-${user.record.id}`);
      expect(hasValidSession(pairedProfile)).toBe(true);
    } finally {
      await pocketbase.dispose();
    }
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A LocalAuth data directory with a copy of the real session for each of `userIds`. */
  async function sessionsDir(name: string, userIds: string[]): Promise<string> {
    const source = path.join(dir, name);
    await mkdir(source, { recursive: true });
    for (const userId of userIds) await cp(pairedProfile, path.join(source, `session-${userId}`), { recursive: true, verbatimSymlinks: true });
    return source;
  }

  describe("against one PocketBase", () => {
    let pocketbase: IsolatedPocketBase;
    let admin: PocketBase;
    const key = randomBytes(32).toString("base64");
    let source: string;
    let alice: string;
    let bob: string;
    let corrupt: string;
    let linked: string;
    const unknownUser = "nosuchuser00000";

    beforeAll(async () => {
      pocketbase = await startIsolatedPocketBase();
      admin = await pocketbase.admin();
      const ids = (await Promise.all([1, 2, 3, 4].map(() => createTestUser(admin)))).map((user) => user.record.id);
      [alice, bob, corrupt, linked] = ids as [string, string, string, string];
      source = await sessionsDir("sessions", [alice, bob, unknownUser]);
      // A folder that is not a session (no login data), a link to a session outside the
      // directory, and a stray file.
      await mkdir(path.join(source, `session-${corrupt}`, "Default"), { recursive: true });
      await writeFile(path.join(source, `session-${corrupt}`, "Default", "Preferences"), randomBytes(2048));
      const outside = await sessionsDir("outside", [linked]);
      await symlink(path.join(outside, `session-${linked}`), path.join(source, `session-${linked}`));
      await writeFile(path.join(source, "README.txt"), "not a session");
    }, 60_000);

    afterAll(async () => {
      await pocketbase?.dispose();
    });

    it("dry-runs by default: a row per folder, a total, nothing changed", async () => {
      const before = await snapshot(source);
      const text = await runScript(pocketbase, key, ["--dir", source]);
      expect(text.code).toBe(1); // some folders would not migrate
      for (const expected of [alice, bob].map((id) => new RegExp(`^${id}\\s+[\\d.]+ [KM]B\\s+\\d+\\s+[\\d.]+ [KM]?B\\s+migrate$`, "m"))) {
        expect(text.stdout).toMatch(expected);
      }
      expect(text.stdout).toMatch(new RegExp(`^${unknownUser} .*skip: unknown user`, "m"));
      expect(text.stdout).toMatch(new RegExp(`^${corrupt} .*skip: not a valid session`, "m"));
      expect(text.stdout).toMatch(new RegExp(`^${linked} .*refused – a symlink`, "m"));
      expect(text.stdout).toMatch(/^total: 5 folders, .* migrate 2/m);

      const json = await runScript(pocketbase, key, ["--dir", source, "--json"]);
      expect(rowOf(json, `session-${alice}`)).toMatchObject({ action: "migrate", userId: alice, deleted: false });
      expect(rowOf(json, `session-${alice}`).archiveBytes).toBeGreaterThan(0);
      expect(rowOf(json, `session-${alice}`).rawBytes).toBeGreaterThan(rowOf(json, `session-${alice}`).archiveBytes!);

      expect(await snapshot(source)).toEqual(before);
      expect(await admin.collection("whatsapp_sessions").getFullList()).toEqual([]);

      const missing = await runScript(pocketbase, key, ["--dir", path.join(dir, "no-such-dir")]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no-such-dir: no such directory/);
    });

    it("--execute uploads and verifies; a second run does nothing; --delete removes only verified folders", async () => {
      const first = await runScript(pocketbase, key, ["--dir", source, "--execute", "--json"]);
      expect(first.code).toBe(1);
      for (const userId of [alice, bob]) expect(rowOf(first, `session-${userId}`)).toMatchObject({ action: "migrated", deleted: false });
      expect(rowOf(first, `session-${unknownUser}`).action).toBe("unknown_user");
      expect(rowOf(first, `session-${corrupt}`).action).toBe("invalid_session");
      expect(rowOf(first, `session-${linked}`).action).toBe("refused");

      // What was stored restores into a logged-in profile with the app's own store.
      const store = new DatabaseSessionStore(admin, newArchiver(createKeyRing(key)), { instanceId: "test", memoryCacheBytes: 0 });
      const restored = path.join(dir, "restored-alice");
      expect(await store.loadSession(alice, restored)).toMatchObject({ tier: "database" });
      expect(hasValidSession(restored)).toBe(true);
      const stored = await admin.collection("whatsapp_sessions").getFullList({ sort: "user" });
      expect(stored.map((record) => record.user).sort()).toEqual([alice, bob].sort());

      const second = await runScript(pocketbase, key, ["--dir", source, "--execute", "--json"]);
      for (const userId of [alice, bob]) expect(rowOf(second, `session-${userId}`).action).toBe("unchanged");
      const after = await admin.collection("whatsapp_sessions").getFullList({ sort: "user" });
      // Nothing uploaded again (the run only held each user's lease while it looked).
      const archives = (records: typeof stored) => records.map((record) => [record.archive, record.metadata.sha256]);
      expect(archives(after)).toEqual(archives(stored));

      const third = await runScript(pocketbase, key, ["--dir", source, "--execute", "--delete", "--json"]);
      expect(third.code).toBe(1);
      for (const userId of [alice, bob]) {
        expect(rowOf(third, `session-${userId}`)).toMatchObject({ action: "unchanged", deleted: true });
        expect(existsSync(path.join(source, `session-${userId}`))).toBe(false);
      }
      for (const folder of [unknownUser, corrupt, linked]) {
        expect(rowOf(third, `session-${folder}`).deleted).toBe(false);
        expect(existsSync(path.join(source, `session-${folder}`))).toBe(true);
      }
      expect(hasValidSession(path.join(dir, "outside", `session-${linked}`))).toBe(true);

      // With the problems gone, a run succeeds.
      for (const folder of [unknownUser, corrupt, linked]) await rm(path.join(source, `session-${folder}`), { recursive: true });
      const clean = await runScript(pocketbase, key, ["--dir", source, "--execute"]);
      expect(clean.code).toBe(0);
      expect(clean.stdout).toMatch(/^total: 0 folders/m);
    });
  });

  it("never overwrites a session the app stored since, nor one an instance is running, nor brings back one deleted since", async () => {
    const pocketbase = await startIsolatedPocketBase();
    try {
      const admin = await pocketbase.admin();
      const key = randomBytes(32).toString("base64");
      const [migratedThenUsed, running, migratedThenDeleted, unmarkable] = (await Promise.all([1, 2, 3, 4].map(() => createTestUser(admin)))).map((user) => user.record.id);
      const source = await sessionsDir("guarded", [migratedThenUsed!, migratedThenDeleted!, unmarkable!]);
      // A folder whose marker cannot be written (a directory is in its way): migrated, but a problem.
      await mkdir(path.join(source, `session-${unmarkable}`, ".wavault-migrated"));
      const first = await runScript(pocketbase, key, ["--dir", source, "--execute", "--json"]);
      expect(first.code).toBe(1);
      expect(rowOf(first, `session-${unmarkable}`)).toMatchObject({ action: "failed", message: expect.stringContaining("could not be marked as migrated") });
      expect(rowOf(first, `session-${migratedThenDeleted}`).action).toBe("migrated");
      await rm(path.join(source, `session-${unmarkable}`), { recursive: true });

      // The app runs the session and saves a newer archive; the old folder is touched later.
      const store = new DatabaseSessionStore(admin, newArchiver(createKeyRing(key)), { instanceId: "app", memoryCacheBytes: 0 });
      const archive = await newArchiver(createKeyRing(key)).archiveSession(path.join(source, `session-${migratedThenUsed}`));
      await store.saveSession(migratedThenUsed!, archive, undefined, { reason: "ready" });
      const appSaved = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${migratedThenUsed}"`);
      const kept = path.join(source, `session-${migratedThenUsed}`, "Default", "Local Storage", "leveldb");
      const later = new Date(Date.now() + 60_000);
      await utimes(kept, later, later);
      for (const file of await readdir(kept)) await utimes(path.join(kept, file), later, later);

      // The user logs out with no client running (or the cleanup deletes the session).
      await store.deleteSession(migratedThenDeleted!);

      // And an instance is running another user's session right now.
      await cp(pairedProfile, path.join(source, `session-${running}`), { recursive: true });
      await new SessionLease(admin, { instanceId: "busy-instance", ttlMs: 60_000 }).claim(running!);

      const run = await runScript(pocketbase, key, ["--dir", source, "--execute", "--delete", "--json"]);
      expect(run.code).toBe(1); // the running one is to be tried again
      expect(rowOf(run, `session-${migratedThenUsed}`)).toMatchObject({ action: "stored_by_app", deleted: false });
      expect(rowOf(run, `session-${running}`)).toMatchObject({ action: "running", deleted: false });
      expect(rowOf(run, `session-${migratedThenDeleted}`)).toMatchObject({ action: "deleted_since", deleted: false });
      expect(await store.hasSession(migratedThenDeleted!)).toBe(false);
      // Not even an empty record comes back (a lease claim would create one).
      expect((await admin.collection("whatsapp_sessions").getList(1, 1, { filter: `user = "${migratedThenDeleted}"` })).totalItems).toBe(0);
      const after = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${migratedThenUsed}"`);
      expect([after.archive, after.metadata.sha256]).toEqual([appSaved.archive, appSaved.metadata.sha256]);
      expect((await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${running}"`)).archive).toBe("");
      for (const userId of [migratedThenUsed, running, migratedThenDeleted]) expect(existsSync(path.join(source, `session-${userId}`))).toBe(true);
    } finally {
      await pocketbase.dispose();
    }
  });

  it("--keep-running marks the verified sessions, which instances then start by themselves, without a connect", async () => {
    const pocketbase = await startIsolatedPocketBase();
    const webCacheDir = path.join(dir, "keep-running-web-cache");
    await writeEmulatorCache(webCacheDir, { qrRotateMs: 500 });
    const key = randomBytes(32).toString("base64");
    const { manager, resumer } = newRuntime({
      admin: await pocketbase.admin(),
      keys: createKeyRing(key),
      sessionRoot: path.join(dir, "keep-running-instance"),
      webCacheDir,
    });
    try {
      const admin = await pocketbase.admin();
      const [marked, unmarked] = (await Promise.all([1, 2].map(() => createTestUser(admin)))).map((user) => user.record.id);
      const refused = await runScript(pocketbase, key, ["--dir", dir, "--keep-running"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--keep-running only goes with --execute/);

      const run = await runScript(pocketbase, key, ["--dir", await sessionsDir("keep-running", [marked!]), "--execute", "--keep-running", "--json"]);
      expect(rowOf(run, `session-${marked}`).action).toBe("migrated");
      await runScript(pocketbase, key, ["--dir", await sessionsDir("not-kept-running", [unmarked!]), "--execute", "--json"]);
      const keepRunning = async (userId: string) =>
        (await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${userId}"`)).keep_running;
      expect([await keepRunning(marked!), await keepRunning(unmarked!)]).toEqual([true, false]);

      expect(await resumer.resumeOnce()).toBe(1);
      await waitForStatus(manager.get(marked!)!, "ready"); // the migrated login, no QR
      expect(manager.get(unmarked!)).toBeUndefined();
    } finally {
      await manager.stopAll();
      await pocketbase.dispose();
    }
  });

  it("stops deleting nothing unverified when PocketBase goes away midway, and exits 1", async () => {
    const pocketbase = await startIsolatedPocketBase();
    try {
      const admin = await pocketbase.admin();
      const users = (await Promise.all([1, 2, 3, 4].map(() => createTestUser(admin)))).map((user) => user.record.id);
      const source = await sessionsDir("midway", users);
      let stopping: Promise<void> | undefined;
      const run = await runScript(pocketbase, randomBytes(32).toString("base64"), ["--dir", source, "--execute", "--delete", "--concurrency", "1"], (line) => {
        if (/^migrated /.test(line)) stopping ??= pocketbase.stop();
      });
      await stopping;

      expect(run.code).toBe(1);
      const lines = run.stderr.split("\n").filter((line) => /^(migrated|failed) /.test(line));
      expect(lines).toHaveLength(4);
      const failed = users.filter((userId) => lines.some((line) => line.startsWith("failed ") && line.includes(`session-${userId}`)));
      expect(failed.length).toBeGreaterThanOrEqual(2);
      for (const userId of users) {
        const verified = lines.some((line) => line.startsWith("migrated ") && line.includes(`session-${userId} – verified and deleted`));
        expect({ userId, exists: existsSync(path.join(source, `session-${userId}`)) }).toEqual({ userId, exists: !verified });
      }
      for (const userId of failed) expect(hasValidSession(path.join(source, `session-${userId}`))).toBe(true);
      expect(run.stdout).toMatch(new RegExp(`folder\\(s\\) not migrated \\(none of them deleted\\)`));
      expect(run.stdout).toMatch(/pocketbase_unavailable/);
    } finally {
      await pocketbase.dispose();
    }
  });
});
