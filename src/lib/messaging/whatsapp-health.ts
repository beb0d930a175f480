import PocketBase from "pocketbase";

import type { Env } from "../../env";
import type { DatabaseSessionStore, StorageStats } from "./database-session-store";
import { getWhatsAppRuntime, type WhatsAppRuntime } from "./whatsapp-runtime";

export interface WhatsAppHealth {
  connections: { active: number; max: number; utilizationPercent: number; memoryUsageMB: number };
  /** Null when PocketBase cannot be read. */
  storage: { totalSessions: number; totalSizeMB: number; averageSizeMB: number } | null;
  healthy: boolean;
  pocketbase: { reachable: boolean };
  instanceId: string;
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

  const [reachable, stored] = await Promise.all([
    pingPocketBase(env.POCKETBASE_URL),
    live ? cachedStorageStats(live.store) : Promise.resolve(null),
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
  };
}

// The health route is public and probes call it often; the totals list every session
// record, so one reading serves every call for a few seconds.
const STORAGE_STATS_TTL_MS = 10_000;
const storageStats = new WeakMap<DatabaseSessionStore, { at: number; stats: Promise<StorageStats | null> }>();

function cachedStorageStats(store: DatabaseSessionStore): Promise<StorageStats | null> {
  const cached = storageStats.get(store);
  if (cached && Date.now() - cached.at < STORAGE_STATS_TTL_MS) return cached.stats;
  const stats = store.getStorageStats().catch(() => null);
  storageStats.set(store, { at: Date.now(), stats });
  void stats.then((value) => value === null && storageStats.delete(store)); // a failure is not kept
  return stats;
}

async function pingPocketBase(url: string): Promise<boolean> {
  try {
    await new PocketBase(url).health.check({ signal: AbortSignal.timeout(PING_TIMEOUT_MS), requestKey: null });
    return true;
  } catch {
    return false;
  }
}
