import type PocketBase from "pocketbase";

import { getEnv, type Env } from "../../env";
import { ChromePathInvalidError, findChromium, type FoundChromium } from "../browser/find-chromium";
import { log } from "../log";
import { getServiceClient } from "../pocketbase/service-client";
import { profileDirOf } from "./channels/profile-dir";
import { WhatsAppChannel } from "./channels/whatsapp-channel";
import { ConnectionManager } from "./connection-manager";
import { DatabaseSessionStore } from "./database-session-store";
import { sweepIdleProfiles } from "./idle-profile-sweep";
import { IdempotentSends, KEY_TTL_MS } from "./idempotent-sends";
import { SendKeyStore } from "./send-key-store";
import { InstanceRegistry } from "./instance-registry";
import { STALE_CONNECTION_MS } from "./session-cleanup";
import { SessionEventLog } from "./session-event-log";
import { SessionLease } from "./session-lease";
import { sweepScratchLeftovers } from "./scratch-sweep";
import { SessionResumer } from "./session-resumer";
import { errorCode } from "./session-store-errors";
import { createSessionArchiver } from "./session-store-factory";

/** No Chromium to run WhatsApp Web in. */
export class BrowserNotFoundError extends Error {
  readonly code = "browser_not_found";
  constructor() {
    super("No Chromium found: set CHROME_PATH or install chromium (npm run setup).");
    this.name = "BrowserNotFoundError";
  }
}

export interface WhatsAppRuntime {
  manager: ConnectionManager;
  store: DatabaseSessionStore;
  leases: SessionLease;
  events: SessionEventLog;
  /** Starts sessions that are to keep running and that no instance runs (see startSessionResume). */
  resumer: SessionResumer;
  /** The instances that resume sessions (this one announces itself there while its resumer runs). */
  registry: InstanceRegistry;
  /** The superuser client the runtime works through. */
  pb: PocketBase;
  /** Where a user's live profile is (LocalAuth's layout under SESSION_TMP_DIR). */
  sessionDir: (userId: string) => string;
  /** The messages sent here under an Idempotency-Key (see IdempotentSends). */
  sends: IdempotentSends;
  /** Whether a Chromium was found: without one the runtime serves PocketBase's side only (status, history, cleanup) and starts no client. */
  hasBrowser: boolean;
}

/**
 * Builds the runtime the configuration describes over a superuser PocketBase client.
 * Without a Chromium (a serverless deployment that only answers PocketBase's side of
 * the routes and runs the cron) it is built all the same: starting a client then fails
 * with BrowserNotFoundError. So it is with a CHROME_PATH that names no browser (logged
 * as an error): users' status, history and the cron go on working meanwhile.
 */
export function createWhatsAppRuntime(
  env: Env,
  pb: PocketBase,
  findBrowser: () => FoundChromium | null = () => findChromium({ chromePath: env.CHROME_PATH }),
): WhatsAppRuntime {
  const chromium = browserOrNone(findBrowser);
  const archiver = createSessionArchiver(env);
  const store = new DatabaseSessionStore(pb, archiver, {
    instanceId: env.INSTANCE_ID,
    memoryCacheBytes: env.SESSION_MEMORY_CACHE_MB * 1024 * 1024,
  });
  const leases = new SessionLease(pb, { instanceId: env.INSTANCE_ID, ttlMs: env.SESSION_LEASE_TTL_MS, ownerUrl: env.INSTANCE_URL });
  const events = new SessionEventLog(pb);
  const manager = new ConnectionManager({
    leaseOwner: leases.owner,
    maxConnections: env.MAX_WHATSAPP_CONNECTIONS,
    memoryBudgetMb: env.WHATSAPP_MEMORY_BUDGET_MB,
    maxWaitingForQr: maxWaitingForQr(env),
    // Without a browser no client starts here (BrowserNotFoundError), whatever the disk.
    ...(chromium ? { disk: { dir: env.SESSION_TMP_DIR, minFreeMb: env.SESSION_TMP_MIN_FREE_MB } } : {}),
    createChannel: (userId) => {
      if (!chromium) throw new BrowserNotFoundError();
      return new WhatsAppChannel({
        userId,
        store,
        archiver,
        leases,
        sessionRoot: env.SESSION_TMP_DIR,
        chromePath: chromium.path,
        webVersion: env.WA_WEB_VERSION,
        webCacheDir: env.WA_WEB_CACHE_DIR,
        archiveIntervalMs: env.SESSION_ARCHIVE_INTERVAL_MS,
        events,
        readyWithinMs: STALE_CONNECTION_MS,
      });
    },
  });
  const registry = new InstanceRegistry(pb, {
    owner: leases.owner,
    instanceId: env.INSTANCE_ID,
    url: env.INSTANCE_URL,
    ttlMs: env.SESSION_LEASE_TTL_MS,
  });
  const resumer = new SessionResumer({ pb, manager, registry });
  return {
    manager,
    store,
    leases,
    events,
    resumer,
    registry,
    pb,
    sessionDir: (userId) => profileDirOf(env.SESSION_TMP_DIR, userId),
    sends: new IdempotentSends(new SendKeyStore(pb, KEY_TTL_MS)),
    hasBrowser: chromium !== null,
  };
}

/** MAX_WHATSAPP_QR_WAITING, by default half of MAX_WHATSAPP_CONNECTIONS (rounded up). */
export function maxWaitingForQr(env: Pick<Env, "MAX_WHATSAPP_QR_WAITING" | "MAX_WHATSAPP_CONNECTIONS">): number {
  return env.MAX_WHATSAPP_QR_WAITING ?? Math.ceil(env.MAX_WHATSAPP_CONNECTIONS / 2);
}

/** `findBrowser()`'s answer; none, logged, when CHROME_PATH names no browser. */
function browserOrNone(findBrowser: () => FoundChromium | null): FoundChromium | null {
  try {
    return findBrowser();
  } catch (error) {
    if (!(error instanceof ChromePathInvalidError)) throw error;
    log("error", `${error.message} This instance starts no WhatsApp clients until it names one.`, { code: error.code });
    return null;
  }
}

// One runtime per process, on globalThis so dev hot reload never starts a second set
// of browsers.
const holder = globalThis as typeof globalThis & { __wavaultWhatsApp?: Promise<WhatsAppRuntime> };

/**
 * The process's WhatsApp runtime, built from the configuration on first use.
 * @throws EnvError, ServiceAuthError
 *   (and the next call tries again)
 */
export function getWhatsAppRuntime(): Promise<WhatsAppRuntime> {
  if (!holder.__wavaultWhatsApp) {
    const pending = getServiceClient().then((pb) => createWhatsAppRuntime(getEnv(), pb));
    holder.__wavaultWhatsApp = pending;
    pending.catch(() => {
      if (holder.__wavaultWhatsApp === pending) holder.__wavaultWhatsApp = undefined;
    });
  }
  return holder.__wavaultWhatsApp;
}

/**
 * Resumes sessions in this process every SESSION_RESUME_INTERVAL_MS (0: never), from
 * the server's start on (instrumentation-node.ts). Until the runtime can be built
 * (PocketBase down at boot, say) it tries again each interval.
 */
export function startSessionResume(env: Env): void {
  const intervalMs = env.SESSION_RESUME_INTERVAL_MS;
  if (!intervalMs) return;
  const attempt = () =>
    getWhatsAppRuntime().then(
      (runtime) => {
        // Every resume would fail here, and count against the session on every instance.
        if (!runtime.hasBrowser) return log("error", "No Chromium: this instance resumes no sessions (set CHROME_PATH, or SESSION_RESUME_INTERVAL_MS=0)", {});
        runtime.resumer.start(intervalMs);
      },
      (error: unknown) => {
        log("warn", "Cannot resume sessions yet; trying again", { code: errorCode(error), error: String(error) });
        setTimeout(attempt, intervalMs).unref();
      },
    );
  void attempt();
}

const HOUSEKEEPING_EVERY_MS = 60 * 60_000;

/**
 * Keeps SESSION_TMP_DIR from growing without end, from the server's start and every
 * hour: the scratch files killed processes left (scratch-sweep.ts), and, once the
 * runtime is up, profiles idle for a week that the database can bring back
 * (idle-profile-sweep.ts).
 */
export function startDiskHousekeeping(env: Env): void {
  const sweep = async () => {
    const leftovers = await sweepScratchLeftovers(env.SESSION_TMP_DIR);
    const runtime = await holder.__wavaultWhatsApp?.catch(() => undefined);
    const profiles = runtime ? await sweepIdleProfiles(env.SESSION_TMP_DIR, runtime.manager) : 0;
    if (leftovers || profiles) log("info", "Cleared SESSION_TMP_DIR", { scratchLeftovers: leftovers, idleProfiles: profiles });
  };
  void sweep();
  setInterval(() => void sweep(), HOUSEKEEPING_EVERY_MS).unref();
}

/** Stops this process's clients (if it started any) for SIGTERM/SIGINT: see stopRuntime. */
export async function shutdownWhatsApp(timeoutMs = 25_000): Promise<void> {
  const runtime = await holder.__wavaultWhatsApp?.catch(() => undefined);
  if (runtime) await stopRuntime(runtime, timeoutMs);
}

/**
 * Stops every client gracefully — each archived one last time from a stopped browser,
 * its lease released — and writes the history recorded meanwhile (the process exits
 * next), giving up after `timeoutMs`.
 */
export async function stopRuntime(runtime: WhatsAppRuntime, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  // No new starts, and no other instance waits for this one to take the sessions it is
  // about to release (a start under way is stopped with the rest).
  await Promise.race([runtime.resumer.withdraw(), new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
  void runtime.resumer.stop();
  await Promise.race([
    runtime.manager.stopAll().then(() => runtime.events.flushedAll()),
    new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
  log("info", "WhatsApp clients stopped for shutdown", { ms: Date.now() - started });
}
