import { randomBytes } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";

/**
 * Replaces `targetDir` all or nothing: `fill` writes the new contents into a fresh
 * staging directory beside the target, which is swapped in with renames only once
 * `fill` has resolved. If `fill` throws, the staging directory is deleted and the
 * target is left exactly as it was; `fill` must have stopped writing by then.
 */
export async function replaceDirAtomically<T>(targetDir: string, fill: (staging: string) => Promise<T>): Promise<T> {
  const { staging, previous } = siblingPaths(targetDir);
  await mkdir(path.dirname(staging), { recursive: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    const filled = await fill(staging);
    await swapIn(staging, targetDir, previous);
    return filled;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Moves `staging` to `targetDir`, the old target out of the way first. Both renames
 * stay in one directory, so each is atomic; between them the target is briefly absent,
 * and it never holds a half-written profile. If the second rename fails, the old
 * target is put back.
 */
async function swapIn(staging: string, targetDir: string, previous: string): Promise<void> {
  let hadPrevious = true;
  try {
    await rename(targetDir, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    hadPrevious = false;
  }
  try {
    await rename(staging, targetDir);
  } catch (error) {
    if (hadPrevious) await rename(previous, targetDir);
    throw error;
  }
  if (hadPrevious) await rm(previous, { recursive: true, force: true });
}

/** Scratch paths beside `targetDir` (same filesystem, so renames are atomic), hidden and unique. */
export function siblingPaths(targetDir: string) {
  const parent = path.dirname(path.resolve(targetDir));
  const prefix = path.join(/*turbopackIgnore: true*/ parent, `.${path.basename(targetDir)}`);
  const suffix = randomBytes(6).toString("hex");
  return {
    staging: `${prefix}.restore-${suffix}`,
    previous: `${prefix}.previous-${suffix}`,
    plaintext: `${prefix}.restore-${suffix}.tgz`,
  };
}
