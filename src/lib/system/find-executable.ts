import { statSync } from "node:fs";
import path from "node:path";

/** True when `file` is a regular file (or a link to one) that someone may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    const stat = statSync(file);
    return stat.isFile() && (stat.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The first executable called `name` on a PATH-style list of directories, or null. */
export function findExecutableOnPath(name: string, searchPath: string): string | null {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}
