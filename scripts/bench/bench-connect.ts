// npm run bench:connect [-- --json] – how fast a stored session comes back: cold connect
// (restore from PocketBase + Chromium + the WhatsApp Web emulator reaching ready), warm
// reconnect (the profile still on disk), and the memory of one idle client.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { parseEnv } from "../../src/env";
import type { WhatsAppChannel } from "../../src/lib/messaging/channels/whatsapp-channel";
import type { SessionStatus } from "../../src/lib/messaging/database-session-store";
import { createWhatsAppRuntime, stopRuntime } from "../../src/lib/messaging/whatsapp-runtime";
import { EMULATOR_WEB_VERSION, writeEmulatorCache } from "../../tests/fixtures/wa-web-emulator";
import { createBenchUser, median, startBenchPocketBase } from "./bench-support";

const RUNS = 5;

function waitFor(channel: WhatsAppChannel, status: SessionStatus): Promise<void> {
  if (channel.status === status) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never ${status}`)), 60_000);
    channel.on("status", (next: SessionStatus) => {
      if (next === status) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function main() {
  const json = process.argv.includes("--json");
  // The runtime logs one JSON line per lifecycle step; keep stdout for the result.
  const print = console.log.bind(console);
  console.log = (...args: unknown[]) => console.error(...args);
  const pocketbase = await startBenchPocketBase();
  const work = await mkdtemp(path.join(os.tmpdir(), "wavault-bench-connect-"));
  try {
    const admin = await pocketbase.admin();
    await writeEmulatorCache(path.join(work, "web-cache"));
    const env = (sessions: string) =>
      parseEnv({
        POCKETBASE_URL: pocketbase.url,
        POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
        POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
        SESSION_ENCRYPTION_KEY: key,
        SESSION_TMP_DIR: path.join(work, sessions),
        WA_WEB_VERSION: EMULATOR_WEB_VERSION,
        WA_WEB_CACHE_DIR: path.join(work, "web-cache"),
        INSTANCE_ID: "bench",
      });
    const key = randomBytes(32).toString("base64");
    const userId = await createBenchUser(admin);

    // Pair once, so that there is a stored session to come back to.
    const pairing = createWhatsAppRuntime(env("pairing"), admin);
    const first = await pairing.manager.connect(userId);
    await waitFor(first, "qr_ready");
    await first.client!.pupPage!.evaluate(() => (window as unknown as { __waEmulator: { pair(): Promise<unknown> } }).__waEmulator.pair());
    await waitFor(first, "ready");
    await stopRuntime(pairing, 30_000);

    const cold: number[] = [];
    const restore: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      // A new deployment: an empty SESSION_TMP_DIR and a cold store.
      const runtime = createWhatsAppRuntime(env(`cold-${run}`), admin);
      const started = performance.now();
      const channel = await runtime.manager.connect(userId);
      await waitFor(channel, "ready");
      cold.push(performance.now() - started);
      restore.push(channel.lastRestore?.ms ?? NaN);
      await stopRuntime(runtime, 30_000);
    }

    const warm: number[] = [];
    const rss: number[] = [];
    const runtime = createWhatsAppRuntime(env("warm"), admin);
    for (let run = 0; run <= RUNS; run++) {
      const started = performance.now();
      const channel = await runtime.manager.connect(userId);
      await waitFor(channel, "ready");
      if (run > 0) warm.push(performance.now() - started); // run 0 fills the disk
      rss.push(runtime.manager.getStats().memoryUsageMB);
      await runtime.manager.disconnect(userId);
    }
    await stopRuntime(runtime, 30_000);

    const result = {
      coldConnectMs: Math.round(median(cold)),
      restoreMs: Math.round(median(restore)),
      warmReconnectMs: Math.round(median(warm)),
      idleClientRssMb: Math.round(median(rss)),
    };
    if (json) print(JSON.stringify(result));
    else {
      console.table(result);
      print(`restore is ${((result.restoreMs / result.coldConnectMs) * 100).toFixed(1)}% of a cold connect`);
    }
  } finally {
    await pocketbase.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
