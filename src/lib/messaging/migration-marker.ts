import { lstatSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Left in a folder once its upload is verified (outside the archived paths, so the
 * folder's fingerprint is unchanged): when the stored session is gone on a later run,
 * the user logged out or the cleanup deleted it, and the folder must not bring it back.
 * It names the folder's source id, which the stored archive's metadata names too: a
 * folder that changed since is uploaded again only when it is that same folder, not
 * another copy of it (an old backup, another machine's).
 */
export const MIGRATED_MARKER = ".wavault-migrated";

/** Whether an earlier run left its marker (a file) in the folder. */
export function isMarkedMigrated(folder: string): boolean {
  try {
    return lstatSync(path.join(folder, MIGRATED_MARKER)).isFile();
  } catch {
    return false;
  }
}

/** The source id an earlier run's marker gives the folder, or null. */
export function markedSourceId(folder: string): string | null {
  try {
    const { sourceId } = JSON.parse(readFileSync(path.join(folder, MIGRATED_MARKER), "utf8")) as { sourceId?: unknown };
    return typeof sourceId === "string" ? sourceId : null;
  } catch {
    return null;
  }
}

/**
 * Leaves the marker in a verified folder.
 * @throws the file system's error (a read-only folder, a directory in the marker's way)
 */
export async function writeMigrationMarker(folder: string, marker: { userId: string; sha256: string; sourceId: string | null }): Promise<void> {
  const { sourceId, ...rest } = marker;
  const content = { ...rest, migratedAt: new Date().toISOString(), ...(sourceId ? { sourceId } : {}) };
  await writeFile(path.join(folder, MIGRATED_MARKER), `${JSON.stringify(content)}\n`);
}
