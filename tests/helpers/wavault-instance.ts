import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type PocketBase from "pocketbase";

import { findChromium } from "../../src/lib/browser/find-chromium";
import { INSTANCES_COLLECTION } from "../../src/lib/messaging/instance-registry";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { startNextServer, type NextServer } from "./next-server";
import { startIsolatedPocketBase } from "./pocketbase";

export type IsolatedPocketBase = Awaited<ReturnType<typeof startIsolatedPocketBase>>;

export interface WavaultInstance {
  pocketbase: IsolatedPocketBase;
  server: NextServer;
  /** The directory of a user's live Chromium profile (where the emulated phone attaches). */
  profileDir(userId: string): string;
  /**
   * Starts one more server of this deployment: the same PocketBase, keys and emulator,
   * its own profiles directory (another machine, as far as it knows). `stop()` stops it too.
   */
  startPeer(env?: Record<string, string>): Promise<{ server: NextServer; profileDir(userId: string): string }>;
  /** Stops the server (gracefully), then PocketBase, and deletes the scratch directory. */
  stop(): Promise<void>;
}

/**
 * One wavault deployment as production runs it: `next start` (built once per run) over
 * its own PocketBase, with its own profiles directory and WhatsApp pointed at the
 * offline emulator. `env` adds to or overrides the defaults ("{url}" in a value stands
 * for the server's own URL).
 */
export async function startWavaultInstance(env: Record<string, string> = {}): Promise<WavaultInstance> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "wavault-instance-"));
  const pocketbase = await startIsolatedPocketBase();
  const webCacheDir = path.join(dir, "web-cache");
  await writeEmulatorCache(webCacheDir, { qrRotateMs: 500 });
  const deployment = {
    POCKETBASE_URL: pocketbase.url,
    POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
    POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
    SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    SESSION_ENCRYPTION_OLD_KEYS: "",
    WA_WEB_VERSION: EMULATOR_WEB_VERSION,
    WA_WEB_CACHE_DIR: webCacheDir,
    CHROME_PATH: findChromium()!.path,
    // Resuming, as production's default does: the runtime is then built at boot, by the
    // instrumentation hook (a bundle of its own), not by the first request.
    SESSION_RESUME_INTERVAL_MS: "30000",
    WHATSAPP_MEMORY_BUDGET_MB: "",
    CRON_SECRET: "",
    STATUS_TOKEN: "",
  };
  const servers: NextServer[] = [];
  const startServer = async (name: string, extra: Record<string, string>) => {
    const sessionRoot = path.join(dir, name);
    const started = await startNextServer((url) => ({ ...deployment, SESSION_TMP_DIR: sessionRoot, ...resolveUrl(extra, url) }));
    servers.push(started);
    return { server: started, profileDir: (userId: string) => path.join(sessionRoot, `session-${userId}`) };
  };
  let first: Awaited<ReturnType<typeof startServer>>;
  try {
    first = await startServer("profiles", env);
  } catch (error) {
    await pocketbase.dispose();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    pocketbase,
    server: first.server,
    profileDir: first.profileDir,
    startPeer: (extra = {}) => startServer(`profiles-${servers.length}`, extra),
    async stop() {
      await Promise.all(servers.map((server) => server.stop()));
      await pocketbase.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `env` with "{url}" in a value replaced by the server's own URL (for INSTANCE_URL). */
function resolveUrl(env: Record<string, string>, url: string): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value.replaceAll("{url}", url)]));
}

/** Resolves once every one of `instanceIds` has announced itself in PocketBase (each does as it boots, when it resumes sessions). */
export async function untilAnnounced(admin: PocketBase, instanceIds: string[]): Promise<void> {
  for (;;) {
    const announced = (await admin.collection(INSTANCES_COLLECTION).getFullList()).map((record) => record.instance_id as string);
    if (instanceIds.every((id) => announced.includes(id))) return;
    await delay(200);
  }
}
