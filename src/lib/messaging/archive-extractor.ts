import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";

import { makeDirectory } from "../system/make-directory";
import { unpackChecked, type ExtractLimits } from "./tar-unpacker";

export type { ExtractLimits } from "./tar-unpacker";

/**
 * Extracts a tar (in gzip) from `gzipFile` into `targetDir` all or nothing: every entry
 * is checked and unpacked into a staging directory beside the target, which is swapped
 * in with renames only when the whole archive has passed. On any failure the staging
 * directory is deleted and the target is left exactly as it was.
 * @throws UnsafeArchiveError, ArchiveTooLargeError, ArchiveCorruptError
 */
export async function extractArchiveAtomically(gzipFile: string, targetDir: string, limits: ExtractLimits) {
  const { staging, previous } = siblingPaths(targetDir);
  await makeDirectory(path.dirname(staging));
  await mkdir(staging, { mode: 0o700 });
  try {
    const unpacked = await unpackChecked(gzipFile, staging, limits);
    await swapIn(staging, targetDir, previous);
    return unpacked;
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

/**
 * Deletes what restores into `targetDir` left behind when their process died mid-way
 * (an unpacked staging folder, a decrypted scratch file — the login keys in plain — or
 * the previous profile of an unfinished swap). Call it only while no restore into
 * `targetDir` runs: one restore at a time per profile.
 */
export async function removeRestoreLeftovers(targetDir: string): Promise<void> {
  const parent = path.dirname(path.resolve(targetDir));
  const base = `.${path.basename(targetDir)}.`;
  const names = await readdir(parent).catch(() => [] as string[]);
  const leftovers = names.filter((name) => name.startsWith(`${base}restore-`) || name.startsWith(`${base}previous-`));
  await Promise.all(leftovers.map((name) => rm(path.join(/*turbopackIgnore: true*/ parent, name), { recursive: true, force: true })));
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
