import path from "node:path";

/** A user's profile directory under `sessionRoot`: LocalAuth's layout for clientId = userId. */
export function profileDirOf(sessionRoot: string, userId: string): string {
  return path.join(sessionRoot, `session-${userId}`);
}
