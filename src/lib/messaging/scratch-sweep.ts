import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";

/**
 * What a process that died mid-way leaves in SESSION_TMP_DIR: an archive it was writing
 * (`wavault-archive-<uuid>.wvlt`, encrypted; `wavault-reencrypt-<uuid>.wvlt` from
 * `npm run reencrypt:sessions`), and a restore's scratch beside a profile
 * (`.session-<user>.restore-<hex>` and its `.tgz`, the login keys in plain, or
 * `.previous-<hex>`). A restore clears its own profile's before it starts, but a user
 * who never comes back to this instance would leave them for ever.
 */
const LEFTOVER_NAMES = [/^wavault-(archive|reencrypt)-[0-9a-f-]{36}\.wvlt$/, /^\.session-.+\.(restore|previous)-[0-9a-f]{12}(\.tgz)?$/];
/**
 * Untouched this long, a leftover is no live work's: an archive is written in seconds
 * and every transfer gives up after 5 minutes, so this also spares another process
 * sharing the directory.
 */
const LEFTOVER_AGE_MS = 60 * 60_000;

/**
 * Deletes the leftovers (above) in `root` untouched for `maxAgeMs`; returns how many.
 * Failures are skipped: it runs again.
 */
export async function sweepScratchLeftovers(root: string, maxAgeMs = LEFTOVER_AGE_MS): Promise<number> {
  const names = await readdir(root).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    if (!LEFTOVER_NAMES.some((pattern) => pattern.test(name))) continue;
    const file = path.join(/*turbopackIgnore: true*/ root, name);
    try {
      if (Date.now() - (await lstat(file)).mtimeMs < maxAgeMs) continue;
      await rm(file, { recursive: true, force: true });
      removed += 1;
    } catch {
      // gone meanwhile, or not ours to delete: the next sweep looks again
    }
  }
  return removed;
}
