// npm run bench:archive [-- --json] – wavault's archive and restore against whatsapp-web.js's
// RemoteAuth on the same real Chromium profile, both through a real PocketBase.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { promisify } from "node:util";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type PocketBase from "pocketbase";

import { DatabaseSessionStore } from "../../src/lib/messaging/database-session-store";
import { disposeArchive, SessionArchiver } from "../../src/lib/messaging/session-archiver";
import { createKeyRing } from "../../src/lib/messaging/archive-keys";
import { buildChromiumProfile, startProfileOrigin } from "../../tests/fixtures/chromium-profile";
import { PROJECT_ROOT } from "../lib/load-env";
import { scanProfile } from "../../src/lib/messaging/profile-scan";
import { createBenchUser, median, startBenchPocketBase, type BenchRun } from "./bench-support";
import { remoteAuthBaseline } from "./remote-auth-baseline";

const RUNS = 5;
const execFileAsync = promisify(execFile);
const benchCredentials = { email: "", password: "" };
const PROFILE_DIR = path.join(PROJECT_ROOT, "bench/.cache/chromium-profile-150mb");
// About 85% caches, the rest login data and chats, like a real WhatsApp Web profile.
const PROFILE_SIZES = { messagesMb: 110, cacheMb: 128 };

async function ensureProfile(): Promise<void> {
  const done = path.join(PROFILE_DIR, ".built");
  if (existsSync(done)) return;
  await rm(PROFILE_DIR, { recursive: true, force: true });
  await mkdir(PROFILE_DIR, { recursive: true });
  const origin = await startProfileOrigin();
  try {
    await buildChromiumProfile(PROFILE_DIR, origin.url, PROFILE_SIZES);
  } finally {
    await origin.close();
  }
  await writeFile(done, new Date().toISOString());
}

/** wavault's archive, save and cold restore of the profile; `run` does one of each. */
async function wavaultRun(admin: PocketBase, work: string) {
  const archiver = new SessionArchiver({
    keys: createKeyRing(randomBytes(32).toString("base64")),
    gzipLevel: 6,
    maxEntries: 50_000,
    maxBytes: 1024 ** 3,
    workDir: work,
  });
  const userId = await createBenchUser(admin);
  const run = async (index: number): Promise<BenchRun> => {
    const target = path.join(work, `wavault-restore-${index}`);
    let started = performance.now();
    const archived = await archiver.archiveSession(PROFILE_DIR);
    const archiveMs = performance.now() - started;
    await new DatabaseSessionStore(admin, archiver, { instanceId: "bench", memoryCacheBytes: 0 }).saveSession(
      userId,
      archived,
    );
    // A new store with no memory tier and an empty target: a cold restore, download included.
    const store = new DatabaseSessionStore(admin, archiver, { instanceId: "bench", memoryCacheBytes: 0 });
    started = performance.now();
    const loaded = await store.loadSession(userId, target);
    const restoreMs = performance.now() - started;
    if (loaded?.tier !== "database") throw new Error("the restore did not come from PocketBase");
    await rm(target, { recursive: true, force: true });
    await disposeArchive(archived);
    return { archiveBytes: archived.sizeBytes, archiveMs, restoreMs };
  };
  return { userId, run };
}

/**
 * Runs wavault and the baseline in turns, RUNS times each, and takes medians: this
 * machine's speed drifts by up to 2x over tens of seconds, and alternating puts both
 * through the same drift, so their ratio holds even when the absolute figures move.
 */
async function measure(admin: PocketBase, work: string) {
  const ours = await wavaultRun(admin, work);
  const baseline = await remoteAuthBaseline(admin, PROFILE_DIR, work);
  const runs = { ours: [] as BenchRun[], baseline: [] as BenchRun[] };
  for (let index = 0; index < RUNS; index++) {
    runs.ours.push(await ours.run(index));
    runs.baseline.push(await baseline(index));
  }
  const peaks: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    peaks.push(await measurePeakRss(admin, ours.userId, path.join(work, `rss-${run}`)));
  }
  if (process.env.BENCH_DEBUG) console.error({ ...runs, peaks });
  const summary = (list: BenchRun[]) => ({
    archiveBytes: list.at(-1)!.archiveBytes,
    archiveMs: median(list.map((run) => run.archiveMs)),
    restoreMs: median(list.map((run) => run.restoreMs)),
  });
  return { ours: { ...summary(runs.ours), peakRssMb: median(peaks) }, baseline: summary(runs.baseline) };
}

/** One archive + save + cold restore in a fresh process: its peak RSS above its start. */
async function measurePeakRss(admin: PocketBase, userId: string, target: string): Promise<number> {
  const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", "scripts/bench/archive-rss-probe.ts"], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      WAVAULT_RSS_PROBE: JSON.stringify({
        url: admin.baseURL,
        ...benchCredentials,
        userId,
        profileDir: PROFILE_DIR,
        target,
        key: randomBytes(32).toString("base64"),
      }),
    },
  });
  await rm(target, { recursive: true, force: true });
  if (process.env.BENCH_DEBUG) console.error(stderr);
  return (JSON.parse(stdout.trim().split("\n").pop()!) as { peakGrowthMb: number }).peakGrowthMb;
}

async function main() {
  const json = process.argv.includes("--json");
  const log = (line: string) => (json ? undefined : console.log(line));
  log("Preparing the Chromium profile (built once into bench/.cache/) …");
  await ensureProfile();
  const { rawBytes, keptBytes } = await scanProfile(PROFILE_DIR);
  const pocketbase = await startBenchPocketBase();
  benchCredentials.email = pocketbase.adminEmail;
  benchCredentials.password = pocketbase.adminPassword;
  const work = await mkdtemp(path.join(os.tmpdir(), "wavault-bench-archive-"));
  try {
    const admin = await pocketbase.admin();
    log(`Profile: ${(rawBytes / 1024 / 1024).toFixed(1)} MB. Measuring wavault and the RemoteAuth baseline in turns (${RUNS} runs each) …`);
    const { ours, baseline } = await measure(admin, work);

    const result = {
      rawBytes,
      // The login data the archive holds: no archive of it gets much smaller than this
      // when Chromium has compressed it already (npm run bench:compressibility).
      keptBytes,
      archiveBytes: ours.archiveBytes,
      ratio: Number((ours.archiveBytes / rawBytes).toFixed(4)),
      archiveMs: Math.round(ours.archiveMs),
      restoreMs: Math.round(ours.restoreMs),
      peakRssMb: Number(ours.peakRssMb.toFixed(1)),
      baseline: {
        name: "whatsapp-web.js RemoteAuth (copy + zip, download + unzip)",
        archiveBytes: baseline.archiveBytes,
        archiveMs: Math.round(baseline.archiveMs),
        restoreMs: Math.round(baseline.restoreMs),
      },
    };
    if (json) {
      console.log(JSON.stringify(result));
      return;
    }
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
    const speedup = (baseline.archiveMs + baseline.restoreMs) / (ours.archiveMs + ours.restoreMs);
    console.table({
      wavault: { archive: mb(result.archiveBytes), "of raw": `${(result.ratio * 100).toFixed(2)}%`, "archive ms": result.archiveMs, "restore ms": result.restoreMs },
      RemoteAuth: {
        archive: mb(baseline.archiveBytes),
        "of raw": `${((baseline.archiveBytes / rawBytes) * 100).toFixed(2)}%`,
        "archive ms": result.baseline.archiveMs,
        "restore ms": result.baseline.restoreMs,
      },
    });
    console.log(`raw profile ${mb(rawBytes)}, of which kept ${mb(keptBytes)}; peak RSS growth ${result.peakRssMb} MB; archive+restore ${speedup.toFixed(1)}x faster than RemoteAuth`);
  } finally {
    await pocketbase.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
