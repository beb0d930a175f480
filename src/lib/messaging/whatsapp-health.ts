import PocketBase from "pocketbase";

import type { Env } from "../../env";
import { daysAgo } from "../days-ago";
import { settleWithin } from "../settle-within";
import type { DatabaseSessionStore } from "./database-session-store";
import { readDiskRoom, type DiskRoom } from "./disk-room";
import type { StorageStats } from "./session-housekeeping";
import { getWhatsAppRuntime, type WhatsAppRuntime } from "./whatsapp-runtime";

export interface WhatsAppHealth {
  connections: { active: number; max: number; utilizationPercent: number; memoryUsageMB: number; waitingForQr: number };
  /** Null when PocketBase cannot be read. */
  storage: { totalSessions: number; totalSizeMB: number; averageSizeMB: number } | null;
  healthy: boolean;
  pocketbase: { reachable: boolean };
  instanceId: string;
  /**
   * Restores tried in the last 24 h (over every instance) and how many reached ready
   * without a QR; successRate is null when none were tried. Null when PocketBase
   * cannot be read.
   */
  restore: { attempted24h: number; succeeded24h: number; successRate: number | null } | null;
  /** Seconds since the last saved archive of the oldest-saved ready session here; null without one. */
  lastArchiveAgeSeconds: number | null;
  /**
   * This instance's clients whose latest saves failed (their stored session lags behind;
   * the log and their history say why: archive_failed). Above 0 for long: sessions that
   * would come back older than they are, or not at all.
   */
  archiveFailing: number;
  /**
   * Sessions (over every instance) that are to keep running but run nowhere yet, waiting
   * for an instance to resume them (see SessionResumer.countWaiting). Null when
   * PocketBase cannot be read.
   */
  waitingToResume: number | null;
  /**
   * Of those, the ones whose last resumes failed: they wait (1 to 30 minutes) before the
   * next try. Above 0 for long: sessions that cannot start (see the log's "A resumed
   * session did not stay up"). Null when PocketBase cannot be read.
   */
  failingToResume: number | null;
  /**
   * The profiles' disk (SESSION_TMP_DIR): `enough` false, this instance starts no new
   * client (see readDiskRoom) and, if it has a browser to run clients with, reports
   * itself unhealthy. Null when it cannot be read.
   */
  disk: DiskRoom | null;
}

/** At or above this share of the connection cap, the instance reports itself unhealthy. */
export const UNHEALTHY_UTILIZATION_PERCENT = 90;
const PING_TIMEOUT_MS = 3_000;
const mb = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(2));

/**
 * This instance's health: its clients (against the cap), the stored sessions, whether
 * PocketBase answers, and the profiles' disk. Unhealthy when PocketBase is unreachable,
 * the clients fill 90% of the cap, or the disk has no room for another client. Never
 * throws: a part that cannot be read shows so.
 */
export async function getWhatsAppHealth(env: Env, runtime?: WhatsAppRuntime | null): Promise<WhatsAppHealth> {
  // One deadline for the whole answer: the runtime wait and the readings share the ping's time.
  const deadline = Date.now() + PING_TIMEOUT_MS;
  const pinging = pingPocketBase(env.POCKETBASE_URL);
  // Not built yet (it signs in to PocketBase first, which may hang): no longer than the ping.
  const live = runtime === undefined ? await settleWithin(getWhatsAppRuntime().catch(() => null), PING_TIMEOUT_MS, () => null) : runtime;
  const stats = live?.manager.getStats();
  const active = stats?.activeConnections ?? 0;
  const max = env.MAX_WHATSAPP_CONNECTIONS;
  const utilizationPercent = Number(((active / max) * 100).toFixed(1));

  const [reachable, stored, restores, waiting] = await Promise.all([
    pinging,
    live ? readStorageStats(live.store, deadline) : null,
    live ? cached(live.events, () => live.events.restoreStats(daysAgo(1)), deadline) : null,
    live ? cached(live.resumer, () => live.resumer.countWaiting(), deadline) : null,
  ]);
  // Totals read while PocketBase answered may be stale once it does not: none then.
  const disk = readDiskRoom(env.SESSION_TMP_DIR, env.SESSION_TMP_MIN_FREE_MB);
  const storage =
    reachable && stored
      ? { totalSessions: stored.totalSessions, totalSizeMB: mb(stored.totalSizeBytes), averageSizeMB: mb(stored.averageSizeBytes) }
      : null;
  return {
    connections: { active, max, utilizationPercent, memoryUsageMB: stats?.memoryUsageMB ?? 0, waitingForQr: stats?.waitingForQr ?? 0 },
    storage,
    // An instance without a browser (serverless: Vercel's /tmp is 512 MB) runs no clients: its disk does not count.
    healthy: storage !== null && utilizationPercent < UNHEALTHY_UTILIZATION_PERCENT && (!live?.hasBrowser || disk?.enough !== false),
    pocketbase: { reachable },
    instanceId: env.INSTANCE_ID,
    restore:
      reachable && restores
        ? {
            attempted24h: restores.attempted,
            succeeded24h: restores.succeeded,
            successRate: restores.attempted ? Number((restores.succeeded / restores.attempted).toFixed(4)) : null,
          }
        : null,
    lastArchiveAgeSeconds: live ? oldestArchiveAgeSeconds(live) : null,
    archiveFailing: live ? live.manager.list().filter((channel) => channel.archiveFailure).length : 0,
    waitingToResume: reachable && waiting ? waiting.waiting : null,
    failingToResume: reachable && waiting ? waiting.failing : null,
    disk,
  };
}

// The health route is public and probes call it often; each reading is a query over
// every session record (an aggregate or a count), so one reading of each serves every
// call for a few seconds. Every call is answered within the ping's time (the runtime
// wait included): a reading
// still under way by then gives way to the last good one (at most 5 minutes old), so a
// PocketBase that is slow but works never makes the answer late or "unhealthy", and one
// that hangs makes it "unhealthy" (the ping fails), not late.
const READING_TTL_MS = 10_000;
const LAST_GOOD_MAX_AGE_MS = 5 * 60_000;
interface Reading {
  at: number;
  pending: Promise<unknown>;
  lastGood?: { at: number; value: unknown };
}
const readings = new WeakMap<object, Reading>();

/** `read()`'s answer for `source`, at most READING_TTL_MS old, by `deadline` (see above); null when it fails or is late with nothing good to fall back on. */
function cached<T>(source: object, read: () => Promise<T>, deadline: number): Promise<T | null> {
  let reading = readings.get(source);
  if (!reading || Date.now() - reading.at >= READING_TTL_MS) {
    const next: Reading = { at: Date.now(), pending: Promise.resolve(null), lastGood: reading?.lastGood };
    next.pending = read().then(
      (value) => {
        next.lastGood = { at: Date.now(), value };
        return value;
      },
      () => {
        next.at = 0; // a failure is not kept: the next call reads again
        return null;
      },
    );
    readings.set(source, (reading = next));
  }
  return answerBy(reading, deadline) as Promise<T | null>;
}

function answerBy(reading: Reading, deadline: number): Promise<unknown> {
  return settleWithin(reading.pending, Math.max(0, deadline - Date.now()), () => {
    const good = reading.lastGood;
    return good && Date.now() - good.at < LAST_GOOD_MAX_AGE_MS ? good.value : null;
  });
}

/** The stored sessions' totals, read at most every 10 s (the health route and /status share them), by `deadline`; null when unreadable. */
export function readStorageStats(store: DatabaseSessionStore, deadline = Date.now() + PING_TIMEOUT_MS): Promise<StorageStats | null> {
  return cached(store, () => store.getStorageStats(), deadline);
}

function oldestArchiveAgeSeconds(runtime: WhatsAppRuntime): number | null {
  const saved = runtime.manager
    .list()
    .filter((channel) => channel.status === "ready" && channel.lastArchivedAt)
    .map((channel) => channel.lastArchivedAt!.getTime());
  return saved.length ? Math.round((Date.now() - Math.min(...saved)) / 1000) : null;
}

async function pingPocketBase(url: string): Promise<boolean> {
  try {
    await new PocketBase(url).health.check({ signal: AbortSignal.timeout(PING_TIMEOUT_MS), requestKey: null });
    return true;
  } catch {
    return false;
  }
}
