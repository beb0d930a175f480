import { createHash } from "node:crypto";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

import { ProfileChangedError } from "./archive-errors";
import { concurrencyLimit } from "../system/concurrency-limit";
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
 * File-system calls one scan (or change check) keeps under way at once. Each is a round
 * trip to libuv's pool, and one at a time they were most of a scan's time (a profile has
 * hundreds to thousands of entries); the bound keeps a scan of a huge cache folder from
 * queueing thousands of calls ahead of the pool's other work (zlib, other sessions' files).
 */
const PARALLEL_FS_CALLS = 32;

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
  const limited = concurrencyLimit(PARALLEL_FS_CALLS);
  /** What ended the scan: once set, the calls still queued or walking fail with it instead of reading on. */
  let failure: Error | undefined;
  const end = (error: Error): never => {
    failure ??= error;
    throw error;
  };
  /** `read` of an entry, or null when it is gone (and is not kept). */
  const unlessGone = async <T>(relativePath: string, read: () => Promise<T>): Promise<T | null> => {
    try {
      return await limited(() => (failure ? Promise.reject(failure) : read()));
    } catch (error) {
      if (error === failure) throw error;
      if (!relativePath || (error as NodeJS.ErrnoException).code !== "ENOENT") return end(error as Error);
      if (isKeptProfilePath(relativePath)) return end(new ProfileChangedError(relativePath));
      return null;
    }
  };
  // Every entry of a folder is looked at at once, and its subfolders walked at once;
  // the results are put together in name order, so the scan is the same as one walk's.
  const walk = async (relativeDir: string): Promise<ProfileScan> => {
    const scan: ProfileScan = { rawBytes: 0, rawFiles: 0, kept: [], keptBytes: 0, keptFiles: 0 };
    const names = await unlessGone(relativeDir, () => readdir(path.join(root, relativeDir)));
    if (!names) return scan;
    const relativePaths = names.sort().map((name) => (relativeDir ? `${relativeDir}/${name}` : name));
    const stats = await Promise.all(relativePaths.map((relativePath) => unlessGone(relativePath, () => lstat(path.join(root, relativePath)))));
    const subfolders = await Promise.all(relativePaths.map((relativePath, index) => (stats[index]?.isDirectory() ? walk(relativePath) : null)));
    relativePaths.forEach((relativePath, index) => {
      const stat = stats[index];
      if (!stat) return;
      const kept = isKeptProfilePath(relativePath);
      const subfolder = subfolders[index];
      if (subfolder) {
        if (kept) scan.kept.push({ path: relativePath, type: "dir", size: 0, mtimeMs: stat.mtimeMs });
        scan.rawBytes += subfolder.rawBytes;
        scan.rawFiles += subfolder.rawFiles;
        scan.keptBytes += subfolder.keptBytes;
        scan.keptFiles += subfolder.keptFiles;
        for (const entry of subfolder.kept) scan.kept.push(entry);
      } else if (stat.isFile()) {
        scan.rawBytes += stat.size;
        scan.rawFiles += 1;
        if (kept) {
          scan.kept.push({ path: relativePath, type: "file", size: stat.size, mtimeMs: stat.mtimeMs });
          scan.keptBytes += stat.size;
          scan.keptFiles += 1;
        }
      }
    });
    return scan;
  };
  return walk("");
}

/** The first kept file (in the scan's order) whose size or mtime differs now from the scan, or null. */
export async function findChangedFile(root: string, scan: ProfileScan): Promise<string | null> {
  const limited = concurrencyLimit(PARALLEL_FS_CALLS);
  const files = scan.kept.filter((entry) => entry.type === "file");
  const changed = await Promise.all(
    files.map((entry) =>
      limited(() => lstat(path.join(root, entry.path))).then(
        (stat) => stat.size !== entry.size || stat.mtimeMs !== entry.mtimeMs,
        () => true,
      ),
    ),
  );
  const index = changed.indexOf(true);
  return index === -1 ? null : files[index]!.path;
}

/** A digest of the kept entries' paths, sizes and mtimes: equal means "nothing to re-archive". */
export function fingerprintOf(scan: ProfileScan): string {
  const hash = createHash("sha256");
  for (const entry of scan.kept) hash.update(`${entry.type} ${entry.path} ${entry.size} ${entry.mtimeMs}\n`);
  return hash.digest("hex");
}
