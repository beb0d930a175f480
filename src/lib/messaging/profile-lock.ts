import { readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * The pid of a Chromium on this machine that has `profileDir` open, or null. Chromium
 * links `SingletonLock` to "<hostname>-<pid>" while it runs and removes it when it exits;
 * a link left by a crash names a pid that is gone, or (after a reboot) one that another
 * program has since: only a live process whose name says Chrome or Chromium counts, as
 * Chromium itself checks. A lock from another host cannot be checked from here: null.
 */
export function browserHoldingProfile(profileDir: string): number | null {
  let target: string;
  try {
    target = readlinkSync(path.join(profileDir, "SingletonLock"));
  } catch {
    return null;
  }
  const match = /^(.*)-(\d+)$/.exec(target);
  if (!match || match[1] !== os.hostname()) return null;
  const pid = Number(match[2]);
  let name: string;
  try {
    name = readFileSync(`/proc/${pid}/comm`, "utf8").trim(); // readable for any user's process
  } catch {
    return null; // gone (or no /proc to tell)
  }
  return /chrom/i.test(name) ? pid : null;
}
