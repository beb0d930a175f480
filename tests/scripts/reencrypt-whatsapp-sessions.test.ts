import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createKeyRing } from "../../src/lib/messaging/archive-keys";
import { DatabaseSessionStore } from "../../src/lib/messaging/database-session-store";
import { newArchiver } from "../helpers/crafted-archive";
import { writeFakeProfile } from "../helpers/fake-profile";
import { createTestUser, startIsolatedPocketBase } from "../helpers/pocketbase";
import { runProjectScript } from "../helpers/run-script";

describe("scripts/reencrypt-whatsapp-sessions.ts", () => {
  const [oldKey, newKey] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];
  const [oldId, newId] = [createKeyRing(oldKey).current.id, createKeyRing(newKey).current.id];
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let dir: string;

  /** Runs the script as an operator would after moving oldKey to SESSION_ENCRYPTION_OLD_KEYS. */
  const run = (args: string[]) =>
    runProjectScript("reencrypt-whatsapp-sessions.ts", {
      POCKETBASE_URL: pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: newKey,
      SESSION_ENCRYPTION_OLD_KEYS: oldKey,
    }, args);

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    const admin = await pocketbase.admin();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-reencrypt-script-"));
    await writeFakeProfile(path.join(dir, "profile"));
    for (const key of [oldKey, oldKey, newKey]) {
      const keys = createKeyRing(key);
      const user = await createTestUser(admin);
      const archive = await newArchiver(keys).archiveSession(path.join(dir, "profile"));
      await new DatabaseSessionStore(admin, newArchiver(keys), { instanceId: "before", memoryCacheBytes: 0 }).saveSession(user.record.id, archive);
    }
  }, 60_000);

  afterAll(async () => {
    await pocketbase?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports the archives per key in a dry run, moves them to the current key with --execute, and says when the old key can go", async () => {
    const dryRun = await run([]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(new RegExp(`^\\w{15}\\s+${oldId}\\s+[\\d.]+ KB\\s+re-encrypt$`, "m"));
    expect(dryRun.stdout).toContain(`archives per key (now): ${newId} (current): 1, ${oldId}: 2`);
    expect(dryRun.stdout).not.toContain("can be emptied");

    const executed = await run(["--execute", "--json"]);
    expect(executed.code).toBe(0);
    const report = JSON.parse(executed.stdout) as { rows: { action: string }[]; archivesByKey: Record<string, number> };
    expect(report.rows.map((row) => row.action).sort()).toEqual(["current", "reencrypted", "reencrypted"]);
    expect(report.archivesByKey).toEqual({ [newId]: 3 });

    const after = await run([]);
    expect(after.stdout).toContain(`archives per key (now): ${newId} (current): 3`);
    expect(after.stdout).toContain("SESSION_ENCRYPTION_OLD_KEYS can be emptied");

    expect((await run(["--concurrency", "0"])).code).toBe(2);
  });
});
