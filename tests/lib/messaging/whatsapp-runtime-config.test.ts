import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { describeError } from "../../../src/lib/http/error-status";
import { runSessionCleanup } from "../../../src/lib/messaging/session-cleanup";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { BrowserNotFoundError, createWhatsAppRuntime, stopRuntime } from "../../../src/lib/messaging/whatsapp-runtime";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../../fixtures/wa-web-emulator";
import { adminClient, configuredEnv, createTestUser, testPocketBase } from "../../helpers/pocketbase";
import { phone, waitForStatus } from "../../helpers/whatsapp-runtime";

describe("the WhatsApp runtime built from the configuration", () => {
  let admin: PocketBase;
  let dir: string;

  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-runtime-config-"));
    await writeEmulatorCache(path.join(dir, "web-cache"), { qrRotateMs: 400 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs clients where WA_WEB_VERSION, WA_WEB_CACHE_DIR and SESSION_TMP_DIR say, and stops them archived, their leases released", async () => {
    const env = configuredEnv({
      SESSION_TMP_DIR: path.join(dir, "sessions"),
      WA_WEB_VERSION: EMULATOR_WEB_VERSION,
      WA_WEB_CACHE_DIR: path.join(dir, "web-cache"),
      INSTANCE_ID: "configured-instance",
      MAX_WHATSAPP_CONNECTIONS: "3",
    });
    const runtime = createWhatsAppRuntime(env, admin);
    const user = await createTestUser(admin);
    const channel = await runtime.manager.connect(user.record.id);
    expect(channel.sessionDir).toBe(path.join(dir, "sessions", `session-${user.record.id}`));
    await waitForStatus(channel, "qr_ready");
    await phone(channel, "pair");
    await waitForStatus(channel, "ready");
    expect(runtime.manager.getStats().maxConnections).toBe(3);

    await stopRuntime(runtime, 20_000);
    expect(channel.status).toBe("disconnected");
    const record = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(record.metadata).toMatchObject({ saved_by: "configured-instance" });
    expect(record.lease_owner).toBe(""); // released for the next instance
  });

  it("without a Chromium still serves PocketBase's side (status, cleanup) and refuses to start a client, with a code of its own", async () => {
    const env = configuredEnv({ SESSION_TMP_DIR: path.join(dir, "no-browser-sessions") });
    const runtime = createWhatsAppRuntime(env, admin, () => null); // a serverless deployment, say
    expect(runtime.hasBrowser).toBe(false);
    const user = await createTestUser(admin);
    expect(await new UserSessionService(runtime).status(user.record.id)).toMatchObject({ status: "disconnected", archive: null });
    await expect(runSessionCleanup(runtime, { sessionDays: 30, eventDays: 7 })).resolves.toMatchObject({ closedConnections: 0 });
    const refused = runtime.manager.connect(user.record.id);
    await expect(refused).rejects.toBeInstanceOf(BrowserNotFoundError);
    expect(describeError(await refused.catch((error: unknown) => error))).toMatchObject({ code: "browser_not_found", status: 503 });
    expect(runtime.manager.get(user.record.id)).toBeUndefined();
  });

  it("treats a CHROME_PATH that names no browser as no Chromium: the rest works, a connect gets browser_not_found", async () => {
    const env = configuredEnv({ SESSION_TMP_DIR: path.join(dir, "bad-chrome-path-sessions"), CHROME_PATH: path.join(dir, "no-such-chrome") });
    const runtime = createWhatsAppRuntime(env, admin);
    expect(runtime.hasBrowser).toBe(false);
    const user = await createTestUser(admin);
    expect(await new UserSessionService(runtime).status(user.record.id)).toMatchObject({ status: "disconnected" });
    await expect(runtime.manager.connect(user.record.id)).rejects.toBeInstanceOf(BrowserNotFoundError);
  });

  it("stops gracefully on SIGTERM through the instrumentation hook, also when the signal comes twice: final archive, lease released", async () => {
    const { adminEmail, adminPassword, url } = testPocketBase();
    const user = await createTestUser(admin);
    const key = randomBytes(32).toString("base64");
    const env = {
      POCKETBASE_URL: url,
      POCKETBASE_ADMIN_EMAIL: adminEmail,
      POCKETBASE_ADMIN_PASSWORD: adminPassword,
      SESSION_ENCRYPTION_KEY: key,
      SESSION_TMP_DIR: path.join(dir, "sigterm-sessions"),
      WA_WEB_VERSION: EMULATOR_WEB_VERSION,
      WA_WEB_CACHE_DIR: path.join(dir, "web-cache"),
      INSTANCE_ID: "sigterm-instance",
      SESSION_RESUME_INTERVAL_MS: "0", // the shared PocketBase holds other tests' sessions
    };
    // Pair once in this process so that the child restores a stored session.
    const pairing = createWhatsAppRuntime(parseEnv(env), admin);
    const channel = await pairing.manager.connect(user.record.id);
    await waitForStatus(channel, "qr_ready");
    await phone(channel, "pair");
    await waitForStatus(channel, "ready");
    await stopRuntime(pairing, 20_000);
    const before = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);

    // node with tsx's loader, not tsx's CLI: that one relays signals to a child of its own,
    // and kills it if the child does not acknowledge a signal within 30 ms (a busy machine).
    const child = spawn(process.execPath, ["--import", "tsx", "tests/fixtures/sigterm-instance.ts", user.record.id], {
      env: { ...process.env, ...env, NEXT_RUNTIME: "nodejs", NODE_ENV: "production" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => { process.stderr.write(chunk); if (/^ready$/m.test(chunk.toString())) resolve(); });
      void exited.then((code) => reject(new Error(`the instance exited (${code}) before it was ready`)));
    });
    const running = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(running.status).toBe("ready");
    expect(running.lease_owner).toMatch(/^sigterm-instance\//);

    child.kill("SIGTERM");
    // Again, mid-stop (as a terminal's Ctrl-C reaches every process of the job and `next dev` passes it on).
    await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const after = await admin.collection("whatsapp_sessions").getFirstListItem(`user = "${user.record.id}"`);
    expect(after).toMatchObject({ lease_owner: "", status: "disconnected" });
    expect(after.metadata.saved_by).toBe("sigterm-instance");
    expect(after.updated > before.updated).toBe(true);
  }, 90_000);
});
