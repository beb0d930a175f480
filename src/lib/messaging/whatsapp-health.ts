import PocketBase from "pocketbase";

import type { Env } from "../../env";
import { daysAgo } from "../days-ago";
import type { DatabaseSessionStore } from "./database-session-store";
import type { StorageStats } from "./session-housekeeping";
import { getWhatsAppRuntime, type WhatsAppRuntime } from "./whatsapp-runtime";

export interface WhatsAppHealth {
  connections: { active: number; max: number; utilizationPercent: number; memoryUsageMB: number };
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
}

/** At or above this share of the connection cap, the instance reports itself unhealthy. */
export const UNHEALTHY_UTILIZATION_PERCENT = 90;
const PING_TIMEOUT_MS = 3_000;
const mb = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(2));

/**
 * This instance's health: its clients (against the cap), the stored sessions, and
 * whether PocketBase answers. Unhealthy when PocketBase is unreachable or the
 * clients fill 90% of the cap. Never throws: a part that cannot be read shows so.
 */
export async function getWhatsAppHealth(env: Env, runtime?: WhatsAppRuntime | null): Promise<WhatsAppHealth> {
  const live = runtime === undefined ? await getWhatsAppRuntime().catch(() => null) : runtime;
  const stats = live?.manager.getStats();
  const active = stats?.activeConnections ?? 0;
  const max = env.MAX_WHATSAPP_CONNECTIONS;
  const utilizationPercent = Number(((active / max) * 100).toFixed(1));

  // Each part within the ping's time: a PocketBase that hangs makes the answer "unhealthy", not late.
  const [reachable, stored, restores, waiting] = await Promise.all([
    pingPocketBase(env.POCKETBASE_URL),
    live ? within(readStorageStats(live.store), PING_TIMEOUT_MS) : null,
    live ? within(cached(live.events, () => live.events.restoreStats(daysAgo(1))), PING_TIMEOUT_MS) : null,
    live ? within(cached(live.resumer, () => live.resumer.countWaiting()), PING_TIMEOUT_MS) : null,
  ]);
  // Totals read while PocketBase answered may be stale once it does not: none then.
  const storage =
    reachable && stored
      ? { totalSessions: stored.totalSessions, totalSizeMB: mb(stored.totalSizeBytes), averageSizeMB: mb(stored.averageSizeBytes) }
      : null;
  return {
    connections: { active, max, utilizationPercent, memoryUsageMB: stats?.memoryUsageMB ?? 0 },
    storage,
    healthy: storage !== null && utilizationPercent < UNHEALTHY_UTILIZATION_PERCENT,
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
    waitingToResume: reachable && waiting ? waiting.waiting : null,
    failingToResume: reachable && waiting ? waiting.failing : null,
  };
}

// The health route is public and probes call it often; the totals list every session
// record, so one reading of each serves every call for a few seconds.
const READING_TTL_MS = 10_000;
const readings = new WeakMap<object, { at: number; value: Promise<unknown> }>();

/** `read()`'s answer for `source`, at most READING_TTL_MS old; null when it fails (and a failure is not kept). */
function cached<T>(source: object, read: () => Promise<T>): Promise<T | null> {
  const hit = readings.get(source);
  if (hit && Date.now() - hit.at < READING_TTL_MS) return hit.value as Promise<T | null>;
  const value = read().catch(() => null);
  readings.set(source, { at: Date.now(), value });
  void value.then((result) => result === null && readings.delete(source));
  return value;
}

/** The stored sessions' totals, read at most every 10 s (the health route and /status share them); null when unreadable. */
export function readStorageStats(store: DatabaseSessionStore): Promise<StorageStats | null> {
  return cached(store, () => store.getStorageStats());
}

/** `reading`'s value, or null when it has not come within `ms`. */
function within<T>(reading: Promise<T | null>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)));
  return Promise.race([reading, late]).finally(() => clearTimeout(timer));
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
