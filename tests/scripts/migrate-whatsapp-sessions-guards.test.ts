import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, copyFile, cp, mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { MigrationRow } from "../../src/lib/messaging/session-migrator";
import { writeFakeProfile } from "../helpers/fake-profile";
import { adminClient, createTestUser, testPocketBase } from "../helpers/pocketbase";
import { runProjectScript, type ScriptRun } from "../helpers/run-script";

/**
 * The migration script's guards for what an operator's machine can throw at it: a
 * Ctrl-C midway, a browser still running on a folder, a second copy of a folder
 * already migrated, a deletion cut short.
 */
describe("scripts/migrate-whatsapp-sessions.ts guards", () => {
  let admin: PocketBase;
  let dir: string;
  const key = randomBytes(32).toString("base64");

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-guards-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], onLine?: (line: string, child: ChildProcess) => void, env: Record<string, string> = {}) => {
    const { url, adminEmail, adminPassword } = testPocketBase();
    const base = { POCKETBASE_URL: url, POCKETBASE_ADMIN_EMAIL: adminEmail, POCKETBASE_ADMIN_PASSWORD: adminPassword, SESSION_ENCRYPTION_KEY: key, SESSION_ENCRYPTION_OLD_KEYS: "" };
    return runProjectScript("migrate-whatsapp-sessions.ts", { ...base, ...env }, args, onLine);
  };
  const rows = (result: ScriptRun) => (JSON.parse(result.stdout) as { rows: MigrationRow[] }).rows;
  const rowOf = (result: ScriptRun, userId: string) => rows(result).find((row) => row.userId === userId)!;
  const sessionRecords = (userId: string) => admin.collection("whatsapp_sessions").getFullList({ filter: admin.filter("user = {:user}", { user: userId }) });

  /** A LocalAuth data directory `name` with a session folder for each of `count` new users. */
  async function sessionsDir(name: string, count: number): Promise<{ source: string; users: string[] }> {
    const source = path.join(dir, name);
    const users = (await Promise.all(Array.from({ length: count }, () => createTestUser(admin)))).map((user) => user.record.id);
    for (const userId of users) await writeFakeProfile(path.join(source, `session-${userId}`), { cacheBytes: 1024 });
    return { source, users };
  }

  it("stops on Ctrl-C after the folders under way: nothing decrypted left behind, no lease held, the rest reported and done by the next run", async () => {
    const { source, users } = await sessionsDir("interrupted", 6);
    const tmp = await mkdtemp(path.join(dir, "tmp-"));
    let signalled = false;
    // Without --json: the progress lines on stderr tell when the first folder is done.
    const interrupted = await run(
      ["--dir", source, "--execute", "--delete", "--concurrency", "1"],
      (line, child) => {
        // Twice at once, as a terminal's Ctrl-C under `npm run` arrives (npm passes it on too): one stop.
        if (!signalled && line.startsWith("migrated ")) signalled = child.kill("SIGINT") && child.kill("SIGINT");
      },
      { TMPDIR: tmp },
    );

    expect(signalled).toBe(true);
    expect(interrupted.code).toBe(1);
    const actionOf = (userId: string) => (interrupted.stdout.split("\n").find((line) => line.startsWith(userId)) ?? "").includes("the run was stopped first") ? "stopped" : "migrated";
    const stopped = users.filter((userId) => actionOf(userId) === "stopped");
    expect(stopped.length).toBeGreaterThanOrEqual(1);
    expect(stopped.length).toBeLessThan(6);
    expect(interrupted.stdout).toMatch(new RegExp(`${6 - stopped.length} folder\\(s\\) deleted`));
    expect(interrupted.stdout).toContain(`${stopped.length} folder(s) not migrated`);
    // No verification scratch (a decrypted archive) left in the temp dir, nor an archive
    // being written in SESSION_TMP_DIR (by default within it).
    expect((await readdir(tmp)).filter((name) => name.startsWith("wavault-") && name !== "wavault-sessions")).toEqual([]);
    expect(await readdir(path.join(tmp, "wavault-sessions"), { recursive: true }).catch(() => [])).toEqual([]);
    for (const userId of users) {
      const [record] = await sessionRecords(userId);
      expect(record?.lease_owner ?? "").toBe("");
      expect(existsSync(path.join(source, `session-${userId}`))).toBe(stopped.includes(userId));
    }

    const resumed = await run(["--dir", source, "--execute", "--delete", "--json"]);
    expect(resumed.code).toBe(0);
    expect(rows(resumed).map((row) => row.action).every((action) => action === "migrated")).toBe(true);
    expect(rows(resumed)).toHaveLength(stopped.length);
  });

  it("leaves a folder a browser on this machine has open, and takes one whose lock names a pid gone or reused", async () => {
    const { source, users } = await sessionsDir("in-use", 3);
    const [open, gone, reused] = users as [string, string, string];
    // A live process named as Chromium's is (a copy of sleep, so that no real browser is needed).
    const chromium = path.join(dir, "chromium");
    await copyFile("/bin/sleep", chromium);
    const browser = spawn(chromium, ["60"], { stdio: "ignore" });
    try {
      // Chromium's lock: "<host>-<pid>"; 2^22 is above pid_max; this test's own pid is a live process that is no browser.
      await symlink(`${os.hostname()}-${browser.pid}`, path.join(source, `session-${open}`, "SingletonLock"));
      await symlink(`${os.hostname()}-4194305`, path.join(source, `session-${gone}`, "SingletonLock"));
      await symlink(`${os.hostname()}-${process.pid}`, path.join(source, `session-${reused}`, "SingletonLock"));

      const result = await run(["--dir", source, "--execute", "--delete", "--json"]);
      expect(result.code).toBe(1);
      expect(rowOf(result, open)).toMatchObject({ action: "running", deleted: false, message: expect.stringContaining(`pid ${browser.pid}`) });
      expect(await sessionRecords(open)).toEqual([]);
      expect(existsSync(path.join(source, `session-${open}`))).toBe(true);
      expect(rowOf(result, gone)).toMatchObject({ action: "migrated", deleted: true });
      expect(rowOf(result, reused)).toMatchObject({ action: "migrated", deleted: true });
    } finally {
      browser.kill();
    }
  });

  it("refuses another copy of a folder migrated before (a backup, another machine's), and takes the folder itself again once it changed", async () => {
    const { source, users } = await sessionsDir("first-copy", 1);
    const userId = users[0]!;
    const folder = path.join(source, `session-${userId}`);
    const backup = path.join(dir, "backup");
    await mkdir(backup);
    await cp(folder, path.join(backup, `session-${userId}`), { recursive: true }); // taken before the migration
    expect((await run(["--dir", source, "--execute", "--json"])).code).toBe(0);
    const [before] = await sessionRecords(userId);

    await appendFile(path.join(backup, `session-${userId}`, "Default", "Local Storage", "leveldb", "000003.log"), "an older login");
    const fromBackup = await run(["--dir", backup, "--execute", "--delete", "--json"]);
    expect(fromBackup.code).toBe(1);
    expect(rowOf(fromBackup, userId)).toMatchObject({ action: "refused", deleted: false, message: expect.stringContaining("another copy") });
    const [after] = await sessionRecords(userId);
    expect([after!.archive, after!.metadata.sha256]).toEqual([before!.archive, before!.metadata.sha256]);
    expect(existsSync(path.join(backup, `session-${userId}`))).toBe(true);

    // The old deployment ran on a little after the first run: the same folder, changed, goes up again.
    await appendFile(path.join(folder, "Default", "Local Storage", "leveldb", "000003.log"), "a newer login");
    const again = await run(["--dir", source, "--execute", "--json"]);
    expect(rowOf(again, userId).action).toBe("migrated");
    const [latest] = await sessionRecords(userId);
    expect(latest!.metadata.sha256).not.toBe(before!.metadata.sha256);
  });

  it("finishes a deletion an earlier run began, and never takes its remains for a session", async () => {
    const { source, users } = await sessionsDir("cut-short", 1);
    const remains = path.join(source, `.wavault-deleting-session-${users[0]}`);
    await mkdir(path.join(remains, "Default", "IndexedDB"), { recursive: true });
    await rm(path.join(source, `session-${users[0]}`), { recursive: true });

    const dryRun = await run(["--dir", source, "--json"]);
    expect(rows(dryRun)).toEqual([]);
    expect(existsSync(remains)).toBe(true); // a dry run changes nothing

    const result = await run(["--dir", source, "--execute", "--json"]);
    expect(result.code).toBe(0);
    expect(rows(result)).toEqual([]);
    expect(existsSync(remains)).toBe(false);
  });
});
