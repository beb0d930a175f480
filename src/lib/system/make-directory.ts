import { mkdir } from "node:fs/promises";

import { diskSpaceOf } from "./disk-space";

/**
 * Makes `dir` with its parents, as `mkdir -p`, and reports a full disk as one. Node's
 * recursive mkdir fails on a file system out of inodes or bytes with ENOENT (it takes the
 * parent it could not make for a missing one); then the disk's free space tells which.
 * @throws the mkdir error; ENOSPC for a full disk
 */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" || !isFull(dir)) throw error;
    throw Object.assign(new Error(`ENOSPC: no space left on device, mkdir '${dir}'`, { cause: error }), {
      code: "ENOSPC",
      errno: -28,
      syscall: "mkdir",
      path: dir,
    });
  }
}

function isFull(dir: string): boolean {
  try {
    const { freeBytes, freeInodes } = diskSpaceOf(dir);
    return freeBytes === 0 || freeInodes === 0;
  } catch {
    return false;
  }
}
