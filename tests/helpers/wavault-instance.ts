import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { findChromium } from "../../src/lib/browser/find-chromium";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../fixtures/wa-web-emulator";
import { startNextServer, type NextServer } from "./next-server";
import { startIsolatedPocketBase } from "./pocketbase";

export type IsolatedPocketBase = Awaited<ReturnType<typeof startIsolatedPocketBase>>;

export interface WavaultInstance {
  pocketbase: IsolatedPocketBase;
  server: NextServer;
  /** The directory of a user's live Chromium profile (where the emulated phone attaches). */
  profileDir(userId: string): string;
  /** Stops the server (gracefully), then PocketBase, and deletes the scratch directory. */
  stop(): Promise<void>;
}

/**
 * One wavault deployment as production runs it: `next start` (built once per run) over
 * its own PocketBase, with its own profiles directory and WhatsApp pointed at the
 * offline emulator. `env` adds to or overrides the defaults.
 */
export async function startWavaultInstance(env: Record<string, string> = {}): Promise<WavaultInstance> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "wavault-instance-"));
  const pocketbase = await startIsolatedPocketBase();
  const webCacheDir = path.join(dir, "web-cache");
  await writeEmulatorCache(webCacheDir, { qrRotateMs: 500 });
  const sessionRoot = path.join(dir, "profiles");
  let server: NextServer;
  try {
    server = await startNextServer({
      POCKETBASE_URL: pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      SESSION_ENCRYPTION_OLD_KEYS: "",
      SESSION_TMP_DIR: sessionRoot,
      WA_WEB_VERSION: EMULATOR_WEB_VERSION,
      WA_WEB_CACHE_DIR: webCacheDir,
      CHROME_PATH: findChromium()!.path,
      WHATSAPP_MEMORY_BUDGET_MB: "",
      CRON_SECRET: "",
      STATUS_TOKEN: "",
      ...env,
    });
  } catch (error) {
    await pocketbase.dispose();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    pocketbase,
    server,
    profileDir: (userId) => path.join(sessionRoot, `session-${userId}`),
    async stop() {
      await server.stop();
      await pocketbase.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
