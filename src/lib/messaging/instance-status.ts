import type { Env } from "../../env";
import type { ConnectionStats } from "./connection-manager";
import type { InstanceLoad } from "./instance-registry";
import type { StorageStats } from "./session-housekeeping";
import { getWhatsAppHealth, readStorageStats, type WhatsAppHealth } from "./whatsapp-health";
import { getWhatsAppRuntime } from "./whatsapp-runtime";

export interface InstanceStatus {
  health: WhatsAppHealth;
  /** The ConnectionManager's stats; null when the runtime cannot start (PocketBase down at boot). */
  clients: ConnectionStats | null;
  storage: StorageStats | null;
  /** The live instances that resume sessions, this one included; null when unreadable. */
  instances: InstanceLoad[] | null;
}

/** Everything the operator page shows about this instance. Never throws. */
export async function getInstanceStatus(env: Env): Promise<InstanceStatus> {
  const runtime = await getWhatsAppRuntime().catch(() => null);
  const [health, storage, instances] = await Promise.all([
    getWhatsAppHealth(env, runtime),
    runtime ? readStorageStats(runtime.store) : Promise.resolve(null),
    runtime ? runtime.registry.live().catch(() => null) : Promise.resolve(null),
  ]);
  return { health, clients: runtime?.manager.getStats() ?? null, storage, instances };
}
