import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import PocketBase from "pocketbase";
import { afterAll, beforeAll } from "vitest";

import { findChromium } from "../../src/lib/browser/find-chromium";
import type { ArchiveKeyRing } from "../../src/lib/messaging/archive-keys";
import { profileDirOf } from "../../src/lib/messaging/channels/profile-dir";
import { WhatsAppChannel } from "../../src/lib/messaging/channels/whatsapp-channel";
import { ConnectionManager } from "../../src/lib/messaging/connection-manager";
import { DatabaseSessionStore, type SessionStatus } from "../../src/lib/messaging/database-session-store";
import { IdempotentSends, KEY_TTL_MS } from "../../src/lib/messaging/idempotent-sends";
import { InstanceRegistry } from "../../src/lib/messaging/instance-registry";
import { SendKeyStore } from "../../src/lib/messaging/send-key-store";
import { SessionEventLog } from "../../src/lib/messaging/session-event-log";
import { SessionLease } from "../../src/lib/messaging/session-lease";
import { SessionResumer, type SessionResumerOptions } from "../../src/lib/messaging/session-resumer";
import type { WhatsAppRuntime } from "../../src/lib/messaging/whatsapp-runtime";
import { limitRequestTime } from "../../src/lib/pocketbase/request-timeout";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { newArchiver, newKeyRing } from "./crafted-archive";
import { startPartitionProxy } from "./partition-proxy";
import { adminClient } from "./pocketbase";

export interface RuntimeOptions {
  admin: PocketBase;
  keys: ArchiveKeyRing;
  /** SESSION_TMP_DIR of this "instance". */
  sessionRoot: string;
  /** Where writeEmulatorCache put the emulator. */
  webCacheDir: string;
  /** The page of webCacheDir WhatsApp Web is (default: the emulator's). */
  webVersion?: string;
  maxConnections?: number;
  /** The cap on clients waiting for a QR scan (default: none, the ConnectionManager's default). */
  maxWaitingForQr?: number;
  instanceId?: string;
  leaseTtlMs?: number;
  /** How soon a client stopped for losing touch with PocketBase is started again (default: the app's 10 s). */
  reconnectDelayMs?: number;
  /** The browser its clients start (default: Debian's Chromium). */
  chromePath?: string;
  /** A client not ready this long after its start stops by itself (default: never; the app's is 15 minutes). */
  readyWithinMs?: number;
  /** A send not answered this long fails (default: the app's 60 s). */
  sendTimeoutMs?: number;
  /** The resumer's timings (default: the app's). */
  resume?: Pick<SessionResumerOptions, "backoffMs" | "stableMs" | "batch" | "patienceMs">;
}

/** A ConnectionManager wired as the app wires it, pointed at the emulator: one "deployment". */
export function newRuntime(options: RuntimeOptions) {
  const archiver = newArchiver(options.keys);
  const store = new DatabaseSessionStore(options.admin, archiver, {
    instanceId: options.instanceId ?? "test-instance",
    memoryCacheBytes: 0,
  });
  const leases = new SessionLease(options.admin, {
    instanceId: options.instanceId ?? "test-instance",
    ttlMs: options.leaseTtlMs ?? 30_000,
  });
  const events = new SessionEventLog(options.admin);
  const registry = new InstanceRegistry(options.admin, {
    owner: leases.owner,
    instanceId: options.instanceId ?? "test-instance",
    ttlMs: options.leaseTtlMs ?? 30_000,
  });
  const manager = new ConnectionManager({
    leaseOwner: leases.owner,
    maxConnections: options.maxConnections ?? 10,
    maxWaitingForQr: options.maxWaitingForQr,
    ...(options.reconnectDelayMs ? { reconnect: { delayMs: options.reconnectDelayMs, windowMs: 60_000 } } : {}),
    createChannel: (userId) =>
      new WhatsAppChannel({
        userId,
        store,
        archiver,
        sessionRoot: options.sessionRoot,
        chromePath: options.chromePath ?? findChromium()!.path,
        webVersion: options.webVersion ?? EMULATOR_WEB_VERSION,
        webCacheDir: options.webCacheDir,
        archiveIntervalMs: 60_000,
        leases,
        events,
        readyWithinMs: options.readyWithinMs,
        sendTimeoutMs: options.sendTimeoutMs,
      }),
  });
  const runtime: WhatsAppRuntime = {
    manager,
    store,
    leases,
    events,
    resumer: new SessionResumer({ pb: options.admin, manager, registry, ...options.resume }),
    registry,
    pb: options.admin,
    sessionDir: (userId) => profileDirOf(options.sessionRoot, userId),
    sends: new IdempotentSends(new SendKeyStore(options.admin, KEY_TTL_MS)),
    hasBrowser: true,
  };
  return { ...runtime, archiver, runtime };
}

/**
 * The command lines of the Chromium processes running `profileDir`: the browser's main
 * process only ("main": a launcher wrapper counts), or every one ("all": its helpers,
 * zygotes and renderers, which exit a moment after the main process).
 */
export function browserProcesses(profileDir: string, which: "main" | "all" = "all"): string[] {
  return execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(profileDir) && (which === "all" || !line.includes("--type=")));
}

/**
 * A WhatsApp Web page whose load never ends (an image from a server that never answers),
 * written into `webCacheDir` as web version `version`: `run` starts clients on it, and the
 * server goes once it is done.
 */
export async function withStalledWebVersion<T>(webCacheDir: string, version: string, run: (webVersion: string) => Promise<T>): Promise<T> {
  const never = createServer(() => {});
  await new Promise<void>((resolve) => never.listen(0, "127.0.0.1", resolve));
  try {
    const page = `<!doctype html><img src="http://127.0.0.1:${(never.address() as AddressInfo).port}/never.png">`;
    await writeFile(path.join(webCacheDir, `${version}.html`), page);
    return await run(version);
  } finally {
    never.closeAllConnections();
    await new Promise((resolve) => never.close(resolve));
  }
}

/** Resolves when the channel reaches `status` (at once if it is there). */
export function waitForStatus(channel: WhatsAppChannel, status: SessionStatus, timeoutMs = 30_000): Promise<void> {
  if (channel.status === status) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`status stayed ${channel.status}, never ${status}`)), timeoutMs);
    const listener = (next: SessionStatus) => {
      if (next !== status) return;
      clearTimeout(timer);
      channel.off("status", listener);
      resolve();
    };
    channel.on("status", listener);
  });
}

/** Resolves with the next archive the channel saves. */
export function nextArchive(channel: WhatsAppChannel, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no archive saved")), timeoutMs);
    channel.once("archived", (archive) => {
      clearTimeout(timer);
      resolve(archive);
    });
  });
}

/** Acts as the phone on the emulator page of a channel's browser. */
export function phone(channel: WhatsAppChannel, action: "pair" | "unlink", options: { syncDelayMs?: number } = {}): Promise<unknown> {
  return channel.client!.pupPage!.evaluate(
    (what, given) => (window as unknown as { __waEmulator: Record<string, (options: object) => Promise<unknown>> }).__waEmulator[what]!(given),
    action,
    options,
  );
}

/** Resolves when the channel has ended completely (browser gone, lease released). */
export function closed(channel: WhatsAppChannel, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the channel never closed")), timeoutMs);
    channel.once("closed", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Connects a user and pairs the emulated phone; resolves with the channel once its first archive is saved. */
export async function connectPaired(manager: ConnectionManager, userId: string): Promise<WhatsAppChannel> {
  const channel = await manager.connect(userId);
  await waitForStatus(channel, "qr_ready");
  const archived = nextArchive(channel);
  await phone(channel, "pair");
  await archived;
  return channel;
}

/**
 * "Deployments" against the emulator for one describe block, over the run's shared
 * PocketBase (the emulator's QR rotating every `qrRotateMs`): registers its own beforeAll (the emulator in a scratch directory) and
 * afterAll (every runtime stopped, the directory removed).
 */
export function emulatorDeployments(scratchPrefix: string, { qrRotateMs = 400 }: { qrRotateMs?: number } = {}) {
  const keys = newKeyRing();
  const runtimes: ReturnType<typeof newRuntime>[] = [];
  let admin: PocketBase;
  let dir: string;
  let webCacheDir: string;
  beforeAll(async () => {
    admin = await adminClient();
    dir = await mkdtemp(path.join(os.tmpdir(), scratchPrefix));
    webCacheDir = path.join(dir, "web-cache");
    await writeEmulatorCache(webCacheDir, { qrRotateMs });
  });
  afterAll(async () => {
    for (const { manager } of runtimes) await manager.stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  const deploy = (name: string, options: Partial<RuntimeOptions> = {}) => {
    const created = newRuntime({ admin, keys, sessionRoot: path.join(dir, name), webCacheDir, instanceId: `instance-${name}`, ...options });
    runtimes.push(created);
    return created;
  };
  return {
    get admin() {
      return admin;
    },
    /** The web-version cache the deployments load WhatsApp Web from (a page added here is a webVersion). */
    get webCacheDir() {
      return webCacheDir;
    },
    /** Where the deployment `name` keeps its profiles. */
    sessionRoot: (name: string) => path.join(dir, name),
    deploy,
    /** A deployment whose PocketBase traffic goes through a proxy the test can break; `proxy.close()` after. */
    async behindProxy(name: string, leaseTtlMs: number, reconnectDelayMs?: number, options: Partial<RuntimeOptions> = {}) {
      const proxy = await startPartitionProxy(admin.baseURL);
      const proxied = limitRequestTime(new PocketBase(proxy.url)); // as the app's service client
      proxied.authStore.save(admin.authStore.token, admin.authStore.record);
      return { proxy, ...deploy(name, { ...options, admin: proxied, leaseTtlMs, reconnectDelayMs }) };
    },
  };
}
