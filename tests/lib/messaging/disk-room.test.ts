import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { describeError } from "../../../src/lib/http/error-status";
import { ConnectionLimitError } from "../../../src/lib/messaging/connection-manager";
import { readDiskRoom } from "../../../src/lib/messaging/disk-room";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { BrowserNotFoundError, createWhatsAppRuntime } from "../../../src/lib/messaging/whatsapp-runtime";
import { adminClient, configuredEnv, createTestUser } from "../../helpers/pocketbase";

/** `df`'s reading of the file system holding `dir`: available MB and free inodes. */
function df(dir: string): { availableMB: number; freeInodes: number } {
  const column = (field: string) => Number(execFileSync("df", ["-B1048576", `--output=${field}`, dir], { encoding: "utf8" }).trim().split("\n")[1]);
  return { availableMB: column("avail"), freeInodes: column("iavail") };
}

describe("the profiles' disk as room for another client (SESSION_TMP_MIN_FREE_MB)", () => {
  let admin: PocketBase;
  let dir: string;

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-disk-room-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An instance on the shared test PocketBase whose SESSION_TMP_DIR is `sessions` in the scratch directory. */
  const configured = (minFreeMb: number) => configuredEnv({ SESSION_TMP_DIR: path.join(dir, "sessions"), SESSION_TMP_MIN_FREE_MB: String(minFreeMb) });

  it("reads what df reads, also for a SESSION_TMP_DIR not made yet", () => {
    const room = readDiskRoom(path.join(dir, "not", "made", "yet"), 1)!;
    const seen = df(dir);
    // Other tests write meanwhile: the same disk within a few hundred MB and inodes.
    expect(Math.abs(room.freeMB! - seen.availableMB)).toBeLessThan(500);
    expect(Math.abs(room.freeInodes! - seen.freeInodes)).toBeLessThan(50_000);
    expect(room).toMatchObject({ minFreeMB: 1, enough: true });
    expect(readDiskRoom(dir, room.freeMB! + 1_000_000)!.enough).toBe(false);
    expect(readDiskRoom(dir, 0)!.enough).toBe(true); // 0: no check
  });

  it("starts no client while the disk has less room than asked, answers 503 connection_limit, and reports unhealthy", async () => {
    const freeMB = readDiskRoom(dir, 1)!.freeMB!;
    const env = configured(freeMB + 1_000_000);
    // A browser that cannot run: were a client started, its start would fail otherwise.
    const runtime = createWhatsAppRuntime(env, admin, () => ({ path: "/nonexistent/chromium", source: "CHROME_PATH" }));
    const user = await createTestUser(admin);

    expect(runtime.manager.hasRoom()).toBe(false);
    expect(runtime.manager.canCreateConnection(user.record.id)).toBe(false);
    const refused = await runtime.manager.connect(user.record.id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionLimitError);
    expect(refused).toMatchObject({ limit: "disk", max: freeMB + 1_000_000 });
    expect((refused as Error).message).toContain("SESSION_TMP_MIN_FREE_MB");
    expect(describeError(refused)).toMatchObject({ status: 503, code: "connection_limit" });
    expect(runtime.manager.get(user.record.id)).toBeUndefined();
    // Nothing claimed or written either: the user has no session record.
    expect(await admin.collection("whatsapp_sessions").getList(1, 1, { filter: `user = "${user.record.id}"` })).toMatchObject({ totalItems: 0 });

    const health = await getWhatsAppHealth(env, runtime);
    expect(health).toMatchObject({ healthy: false, pocketbase: { reachable: true }, disk: { minFreeMB: freeMB + 1_000_000, enough: false } });
    expect(health.storage).not.toBeNull(); // the disk alone makes it unhealthy

    // Without a browser (a serverless deployment: its /tmp is small) no client runs here:
    // the disk neither makes it unhealthy nor hides why a connect fails.
    const serverless = createWhatsAppRuntime(env, admin, () => null);
    expect(await getWhatsAppHealth(env, serverless)).toMatchObject({ healthy: true, disk: { enough: false } });
    await expect(serverless.manager.connect(user.record.id)).rejects.toBeInstanceOf(BrowserNotFoundError);

    const roomy = configured(1);
    const other = createWhatsAppRuntime(roomy, admin, () => ({ path: "/nonexistent/chromium", source: "CHROME_PATH" }));
    expect(other.manager.hasRoom()).toBe(true);
    expect(await getWhatsAppHealth(roomy, other)).toMatchObject({ healthy: true, disk: { minFreeMB: 1, enough: true } });
  });
});
