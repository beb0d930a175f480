import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";

import type { ConnectionManager } from "./connection-manager";
import { VERSION_MARKER } from "./database-session-store";
import { browserHoldingProfile } from "./profile-lock";

/**
 * A profile the database vouches for that no client here has saved or restored for
 * this long is deleted: its session comes back from the database when it is wanted,
 * and SESSION_TMP_DIR does not keep every user who ever ran here (a profile with its
 * caches is 100 MB or more).
 */
export const IDLE_PROFILE_MS = 7 * 24 * 60 * 60_000;
const PROFILE_NAME = /^session-(.+)$/;

/**
 * Deletes the idle profiles in `root` (LocalAuth's `session-<userId>` folders): those
 * with the version marker a save or a restore writes, untouched for `maxIdleMs`, whose
 * user has no client here (nor one to be started again), and that no Chromium has open
 * (another process sharing the directory). A profile without the marker was never saved,
 * and may be a login's only copy: it stays. Returns how many it deleted.
 */
export async function sweepIdleProfiles(root: string, manager: ConnectionManager, maxIdleMs = IDLE_PROFILE_MS): Promise<number> {
  const names = await readdir(root).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const userId = PROFILE_NAME.exec(name)?.[1];
    if (!userId) continue;
    const profile = path.join(/*turbopackIgnore: true*/ root, name);
    const idleSince = await stat(path.join(/*turbopackIgnore: true*/ profile, VERSION_MARKER)).then(
      (marker) => marker.mtimeMs,
      () => null,
    );
    if (idleSince === null || Date.now() - idleSince < maxIdleMs || browserHoldingProfile(profile) !== null) continue;
    // Connects for the user wait meanwhile, so none starts on a half-deleted profile.
    const deleted = await manager
      .whileNoClient(userId, () => rm(profile, { recursive: true, force: true }), { housekeeping: true })
      .catch(() => ({ ran: false })); // the next sweep tries again
    if (deleted.ran) removed += 1;
  }
  return removed;
}
