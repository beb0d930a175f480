import { statfsSync } from "node:fs";
import path from "node:path";

export interface DiskSpace {
  /** Bytes an unprivileged process may still write; null where the file system does not count them (a tmpfs of size=0, some FUSE ones). */
  freeBytes: number | null;
  totalBytes: number | null;
  /** Inodes left to create files with; null where the file system does not count them (btrfs, say). */
  freeInodes: number | null;
}

/**
 * The free space of the file system that holds `dir`, or will: while `dir` does not
 * exist yet, that of its nearest existing parent. One statfs call.
 * @throws the statfs error (EACCES, say) other than a missing directory
 */
export function diskSpaceOf(dir: string): DiskSpace {
  for (let at = path.resolve(/*turbopackIgnore: true*/ dir); ; at = path.dirname(at)) {
    try {
      const stats = statfsSync(at);
      return {
        freeBytes: stats.blocks > 0 ? stats.bavail * stats.bsize : null,
        totalBytes: stats.blocks > 0 ? stats.blocks * stats.bsize : null,
        freeInodes: stats.files > 0 ? stats.ffree : null,
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || path.dirname(at) === at) throw error;
    }
  }
}
