import type PocketBase from "pocketbase";

import type { Env } from "../../env";
import { createKeyRing } from "./archive-keys";
import { DatabaseSessionStore } from "./database-session-store";
import { SessionArchiver } from "./session-archiver";

/** The archiver the configuration describes: keys, gzip level and restore limits. */
export function createSessionArchiver(env: Env): SessionArchiver {
  return new SessionArchiver({
    keys: createKeyRing(env.SESSION_ENCRYPTION_KEY, env.SESSION_ENCRYPTION_OLD_KEYS),
    gzipLevel: env.GZIP_LEVEL,
    maxEntries: env.SESSION_RESTORE_MAX_ENTRIES,
    maxBytes: env.SESSION_RESTORE_MAX_BYTES,
    // Beside the profiles: one directory to size, and to sweep (scratch-sweep.ts).
    workDir: env.SESSION_TMP_DIR,
  });
}

/** The session store over `pb` (a superuser client), configured from `env`. */
export function createSessionStore(pb: PocketBase, env: Env): DatabaseSessionStore {
  return new DatabaseSessionStore(pb, createSessionArchiver(env), {
    instanceId: env.INSTANCE_ID,
    memoryCacheBytes: env.SESSION_MEMORY_CACHE_MB * 1024 * 1024,
  });
}
