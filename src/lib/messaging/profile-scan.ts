import { createHash } from "node:crypto";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

import { ProfileChangedError } from "./archive-errors";
import { isKeptProfilePath } from "./profile-rules";

export interface ProfileEntry {
  /** Relative to the profile root, with "/". */
  path: string;
  type: "file" | "dir";
  size: number;
  mtimeMs: number;
}

export interface ProfileScan {
  /** Every regular file's bytes, kept or pruned: the profile's size on disk. */
  rawBytes: number;
  /** How many regular files there are, kept or pruned. */
  rawFiles: number;
  /** What the archive holds, parents before children. */
  kept: ProfileEntry[];
  keptBytes: number;
  keptFiles: number;
}

/**
 * Walks a profile once: measures it whole and lists what profile-rules.ts keeps.
 * Links, sockets and devices are never kept (a restore refuses them anyway). A running
 * browser creates and deletes files meanwhile: one that goes from a pruned folder (a
 * cache) is left out; one that goes from a kept folder means the login data is being
 * written.
 * @throws ProfileChangedError when a kept file or folder goes during the walk (try again);
 *   the file system's error when the profile itself cannot be read
 */
export async function scanProfile(root: string): Promise<ProfileScan> {
  const scan: ProfileScan = { rawBytes: 0, rawFiles: 0, kept: [], keptBytes: 0, keptFiles: 0 };
  /** `read` of an entry, or null when it is gone (and is not kept). */
  const unlessGone = async <T>(relativePath: string, read: () => Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (error) {
      if (!relativePath || (error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      if (isKeptProfilePath(relativePath)) throw new ProfileChangedError(relativePath);
      return null;
    }
  };
  const walk = async (relativeDir: string) => {
    const names = await unlessGone(relativeDir, () => readdir(path.join(root, relativeDir)));
    if (!names) return;
    names.sort();
    for (const name of names) {
      const relativePath = relativeDir ? `${relativeDir}/${name}` : name;
      const stat = await unlessGone(relativePath, () => lstat(path.join(root, relativePath)));
      if (!stat) continue;
      const kept = isKeptProfilePath(relativePath);
      if (stat.isDirectory()) {
        if (kept) scan.kept.push({ path: relativePath, type: "dir", size: 0, mtimeMs: stat.mtimeMs });
        await walk(relativePath);
      } else if (stat.isFile()) {
        scan.rawBytes += stat.size;
        scan.rawFiles += 1;
        if (kept) {
          scan.kept.push({ path: relativePath, type: "file", size: stat.size, mtimeMs: stat.mtimeMs });
          scan.keptBytes += stat.size;
          scan.keptFiles += 1;
        }
      }
    }
  };
  await walk("");
  return scan;
}

/** The first kept file whose size or mtime differs now from the scan, or null. */
export async function findChangedFile(root: string, scan: ProfileScan): Promise<string | null> {
  for (const entry of scan.kept) {
    if (entry.type !== "file") continue;
    try {
      const stat = await lstat(path.join(root, entry.path));
      if (stat.size !== entry.size || stat.mtimeMs !== entry.mtimeMs) return entry.path;
    } catch {
      return entry.path;
    }
  }
  return null;
}

/** A digest of the kept entries' paths, sizes and mtimes: equal means "nothing to re-archive". */
export function fingerprintOf(scan: ProfileScan): string {
  const hash = createHash("sha256");
  for (const entry of scan.kept) hash.update(`${entry.type} ${entry.path} ${entry.size} ${entry.mtimeMs}\n`);
  return hash.digest("hex");
}
