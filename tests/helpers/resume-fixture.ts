import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll } from "vitest";

import type { ThrowawayPocketBase } from "../../scripts/lib/pocketbase-server";
import type { SessionStatus } from "../../src/lib/messaging/database-session-store";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { newKeyRing } from "./crafted-archive";
import { startIsolatedPocketBase } from "./pocketbase";
import { connectPaired, newRuntime, type RuntimeOptions } from "./whatsapp-runtime";

const SESSIONS = "whatsapp_sessions";

/**
 * The world of the tests of sessions that start by themselves, for the calling
 * `describe` (it registers its own hooks): a PocketBase of its own (a resumer looks at
 * every session in the database, and the shared one holds other tests' sessions), the
 * emulator, and "instances" — runtimes in this process or booted processes. After each
 * test its runtimes are stopped and every session unmarked, so the next sees only its own.
 */
export function useResumeFixture() {
  const runtimes: ReturnType<typeof newRuntime>[] = [];
  const world = {
    pocketbase: undefined as unknown as ThrowawayPocketBase,
    admin: undefined as unknown as PocketBase,
    dir: "",
    webCacheDir: "",
    keys: newKeyRing(),

    /** One "deployment" in this process, named `name`. */
    runtime: (name: string, options: Partial<Pick<RuntimeOptions, "maxConnections" | "resume" | "chromePath" | "keys">> = {}) => {
      const created = newRuntime({
        admin: world.admin,
        keys: world.keys,
        sessionRoot: path.join(world.dir, name),
        webCacheDir: world.webCacheDir,
        instanceId: `instance-${name}`,
        ...options,
      });
      runtimes.push(created);
      return created;
    },

    newUser: async () => {
      const email = `resume-${randomBytes(6).toString("hex")}@wavault.test`;
      return (await world.admin.collection("users").create({ email, password: "password-1234", passwordConfirm: "password-1234" })).id as string;
    },

    sessionOf: (userId: string) => world.admin.collection(SESSIONS).getFirstListItem(`user = "${userId}"`),

    /** A user paired on a first instance that then stops for a deploy (SIGTERM): the session is stored, its lease released. */
    pairedThenDeployed: async (name: string) => {
      const userId = await world.newUser();
      const first = world.runtime(`${name}-before-deploy`);
      await connectPaired(first.manager, userId);
      await first.manager.stopAll();
      return userId;
    },

    /** Starts whatever the resumer starts for `userId`, and records its statuses from the beginning. */
    statusesOf: (manager: ReturnType<typeof newRuntime>["manager"], userId: string) => {
      const statuses: SessionStatus[] = [];
      const watch = setInterval(() => {
        const channel = manager.get(userId);
        if (channel && statuses.length === 0) {
          statuses.push(channel.status);
          channel.on("status", (status: SessionStatus) => statuses.push(status));
        }
      }, 1);
      return { statuses, stop: () => clearInterval(watch) };
    },

    /** A wavault instance in its own process, started as a server starts (resuming every second), until `stop()` (SIGTERM). */
    boot: (instanceId: string) => {
      const env = {
        POCKETBASE_URL: world.pocketbase.url,
        POCKETBASE_ADMIN_EMAIL: world.pocketbase.adminEmail,
        POCKETBASE_ADMIN_PASSWORD: world.pocketbase.adminPassword,
        SESSION_ENCRYPTION_KEY: world.keys.current.key.toString("base64"),
        SESSION_TMP_DIR: path.join(world.dir, `${instanceId}-sessions`),
        WA_WEB_VERSION: EMULATOR_WEB_VERSION,
        WA_WEB_CACHE_DIR: world.webCacheDir,
        INSTANCE_ID: instanceId,
        SESSION_RESUME_INTERVAL_MS: "1000",
      };
      // node with tsx's loader, not tsx's CLI (which kills a child slow to acknowledge a relayed signal).
      const child = spawn(process.execPath, ["--import", "tsx", "tests/fixtures/booted-instance.ts"], {
        env: { ...process.env, ...env, NEXT_RUNTIME: "nodejs", NODE_ENV: "production" },
        stdio: ["ignore", "inherit", "inherit"],
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      return {
        stop: () => {
          child.kill("SIGTERM");
          return exited;
        },
      };
    },
  };

  beforeAll(async () => {
    world.pocketbase = await startIsolatedPocketBase();
    world.admin = await world.pocketbase.admin();
    world.dir = await mkdtemp(path.join(os.tmpdir(), "wavault-resume-"));
    world.webCacheDir = path.join(world.dir, "web-cache");
    await writeEmulatorCache(world.webCacheDir, { qrRotateMs: 400 });
  });
  afterEach(async () => {
    for (const { manager, resumer, registry } of runtimes.splice(0)) {
      await resumer.stop();
      await registry.leave(); // one a test announced itself
      await manager.stopAll();
    }
    for (const record of await world.admin.collection(SESSIONS).getFullList({ filter: "keep_running = true" })) {
      await world.admin.collection(SESSIONS).update(record.id, { keep_running: false });
    }
  });
  afterAll(async () => {
    await world.pocketbase?.dispose();
    await rm(world.dir, { recursive: true, force: true });
  });
  return world;
}
