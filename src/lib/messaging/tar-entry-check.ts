import path from "node:path";
import type { ReadEntry } from "tar";

import { UnsafeArchiveError } from "./archive-errors";

/** The tar entry types a restore writes; every other one (links, devices, FIFOs, …) is refused. */
const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
/** Longest name of one path component (every Linux filesystem's), and of a whole path; a profile's are far shorter. */
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 1024;

/** The entry's path relative to the target, or the reason it may not be extracted. */
export function checkEntry(entry: ReadEntry, root: string): string | UnsafeArchiveError {
  const name = entry.path;
  if (!FILE_TYPES.has(entry.type) && entry.type !== "Directory") {
    return new UnsafeArchiveError(name, `${entry.type} entries are not allowed`);
  }
  if (name.length === 0 || name.includes("\0")) return new UnsafeArchiveError(name, "empty or NUL in path");
  if (name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) {
    return new UnsafeArchiveError(name, "absolute path");
  }
  const parts = name.split(/[\\/]/).filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) return new UnsafeArchiveError(name, "path climbs out with ..");
  const relative = parts.join("/");
  if (Buffer.byteLength(relative) > MAX_PATH_BYTES || parts.some((part) => Buffer.byteLength(part) > MAX_NAME_BYTES)) {
    return new UnsafeArchiveError(name.slice(0, 100), `path longer than ${MAX_PATH_BYTES} bytes or a name longer than ${MAX_NAME_BYTES}`);
  }
  // Belt and braces: whatever the checks above missed must still resolve inside root.
  if (relative && !path.resolve(root, relative).startsWith(root + path.sep)) {
    return new UnsafeArchiveError(name, "path resolves outside the target");
  }
  return relative;
}
