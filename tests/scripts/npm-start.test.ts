import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PROJECT_ROOT } from "../../scripts/lib/load-env";
import { findFreePort, isPortFree } from "../../scripts/lib/pocketbase-server";
import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { ensureNextBuild } from "../helpers/next-server";
import { createTestUser, testPocketBase } from "../helpers/pocketbase";

/** The processes whose command line names `marker` (the stack's own temp dir). */
const processesNaming = (marker: string) =>
  execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(marker))
    .map((line) => Number(line.trim().split(/\s+/)[0]));

/**
 * `npm start` as a container runs it: npm is the process the platform signals (PID 1
 * under Docker, the unit's main process under systemd's KillMode=mixed), and it alone
 * gets SIGTERM on a deploy. The stop must still reach the app: a final archive of every
 * client, then PocketBase.
 */
describe("npm start", () => {
  let dir: string;
  /** npm's process groups (npm, the app, next-server): all of it goes after the tests, whatever happened. */
  const groups: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-npm-start-"));
    await writeEmulatorCache(path.join(dir, "web-cache"), { qrRotateMs: 400 });
    await ensureNextBuild();
  }, 300_000);
  afterAll(async () => {
    for (const group of groups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // gone already
      }
    }
    for (const pid of processesNaming(dir)) process.kill(pid, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  /** `npm start` on free ports with its own PocketBase, up and answering, with one user's client showing its QR. */
  const startWithClient = async (name: string) => {
    const [pbPort, appPort] = [await findFreePort(), await findFreePort()];
    const admin = { email: "ops@wavault.test", password: randomBytes(12).toString("hex") };
    const npm = spawn("npm", ["start"], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        POCKETBASE_URL: `http://127.0.0.1:${pbPort}`,
        POCKETBASE_DATA_DIR: path.join(dir, name, "pb_data"),
        POCKETBASE_BIN: testPocketBase().bin,
        POCKETBASE_ADMIN_EMAIL: admin.email,
        POCKETBASE_ADMIN_PASSWORD: admin.password,
        SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
        SESSION_TMP_DIR: path.join(dir, name, "sessions"),
        WA_WEB_VERSION: EMULATOR_WEB_VERSION,
        WA_WEB_CACHE_DIR: path.join(dir, "web-cache"),
        SESSION_RESUME_INTERVAL_MS: "0",
        PORT: String(appPort),
        NODE_ENV: "production",
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group (a terminal's job), also for the clean-up
    });
    groups.push(npm.pid!);
    let output = "";
    npm.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    npm.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once("exit", resolve));

    const app = `http://127.0.0.1:${appPort}`;
    for (let up = false; !up; await delay(200)) {
      if (npm.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
      up = await fetch(`${app}/api/health/whatsapp`).then((response) => response.status === 200, () => false);
    }
    const user = await createTestUser(await createServiceClient({ url: `http://127.0.0.1:${pbPort}`, ...admin }));
    const connected = await fetch(`${app}/api/whatsapp/connect`, { method: "POST", headers: { authorization: `Bearer ${user.token}` } });
    expect(connected.status).toBe(202);
    expect(processesNaming(path.join(dir, name, "sessions")).length).toBeGreaterThan(0);
    return { npm, exited, output: () => output, pbPort, appPort };
  };

  /** The stop went as it should: the clients stopped while PocketBase still answered, then nothing of the stack is left. */
  const expectStoppedInOrder = async (stack: Awaited<ReturnType<typeof startWithClient>>, name: string) => {
    await stack.exited; // npm itself may go first (a SIGHUP): the rest is awaited below
    await expect.poll(() => processesNaming(path.join(dir, name)), { timeout: 30_000 }).toEqual([]);
    await expect.poll(() => isPortFree("127.0.0.1", stack.appPort), { timeout: 30_000 }).toBe(true);
    expect(await isPortFree("127.0.0.1", stack.pbPort)).toBe(true);
    expect(stack.output()).toContain("WhatsApp clients stopped for shutdown");
    expect(stack.output()).not.toMatch(/Failed to (record the session status|release the session lease)/);
  };

  it("stops gracefully when only npm gets SIGTERM: the clients stopped, then the app and PocketBase", async () => {
    const stack = await startWithClient("sigterm");
    stack.npm.kill("SIGTERM");
    await expectStoppedInOrder(stack, "sigterm");
  }, 120_000);

  it("stops gracefully when its terminal closes (SIGHUP to the job), PocketBase included", async () => {
    const stack = await startWithClient("sighup");
    process.kill(-stack.npm.pid!, "SIGHUP");
    await expectStoppedInOrder(stack, "sighup");
  }, 120_000);
});
