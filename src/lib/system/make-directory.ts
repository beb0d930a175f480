import { mkdir, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Makes `dir` with its parents, as `mkdir -p`, failing with the file system's own error.
 * Node's recursive mkdir reports any parent it could not make as ENOENT, a full disk
 * (ENOSPC) or a quota (EDQUOT) included; made one level at a time, the real error shows.
 * @throws the mkdir error
 */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await makeOneByOne(path.resolve(/*turbopackIgnore: true*/ dir), mode);
  }
}

/** What a recursive mkdir does, each missing level on its own (a level made meanwhile is fine). */
async function makeOneByOne(dir: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; !(await exists(at)); at = path.dirname(at)) {
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const level of missing) {
    try {
      await mkdir(level, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

async function exists(at: string): Promise<boolean> {
  try {
    await stat(at);
    return true;
  } catch {
    return false;
  }
}
