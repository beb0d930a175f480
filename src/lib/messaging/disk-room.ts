import { diskSpaceOf } from "../system/disk-space";

/**
 * Below this many free inodes a new client is refused as well: a restore creates ~120
 * files and a running Chromium hundreds more, and a file system out of inodes fails
 * them as one out of bytes does.
 */
export const MIN_FREE_INODES = 10_000;

export interface DiskRoom {
  /** Null where the file system does not count its size. */
  freeMB: number | null;
  /** SESSION_TMP_MIN_FREE_MB: 0 checks nothing. */
  minFreeMB: number;
  /** Null where the file system does not count inodes. */
  freeInodes: number | null;
  /** Room for another client: at least minFreeMB and MIN_FREE_INODES free (what the file system does not count, counts as room). */
  enough: boolean;
}

/**
 * How much room the disk of the profiles (SESSION_TMP_DIR) has for another client. A
 * disk nearly full makes Chromium hang in its start (seen: until the 15-minute ready
 * deadline) and every save fail, so a new client is refused before that. Null when the
 * disk cannot be read (a restore then fails on its own, with LocalDiskError). The check
 * reserves nothing: starts at the same moment all see the same free space, so the
 * margin should cover the profiles of the starts an instance makes at once.
 */
export function readDiskRoom(dir: string, minFreeMb: number): DiskRoom | null {
  let space;
  try {
    space = diskSpaceOf(dir);
  } catch {
    return null;
  }
  const freeMB = space.freeBytes === null ? null : Math.floor(space.freeBytes / 1024 / 1024);
  const bytesLow = freeMB !== null && freeMB < minFreeMb;
  const inodesLow = space.freeInodes !== null && space.freeInodes < MIN_FREE_INODES;
  return {
    freeMB,
    minFreeMB: minFreeMb,
    freeInodes: space.freeInodes,
    enough: minFreeMb === 0 || (!bytesLow && !inodesLow),
  };
}
