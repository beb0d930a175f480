import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, readFile } from "node:fs/promises";

/** The development defaults written into the gitignored .env.local on first run. */
export function generateDevDefaults(): Record<string, string> {
  return {
    POCKETBASE_URL: "http://127.0.0.1:8090",
    POCKETBASE_ADMIN_EMAIL: "admin@wavault.local",
    POCKETBASE_ADMIN_PASSWORD: randomBytes(24).toString("base64url"),
    SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    CRON_SECRET: randomBytes(24).toString("base64url"),
    STATUS_TOKEN: randomBytes(24).toString("base64url"),
  };
}

/**
 * Adds to `file` every development default it does not define yet; values already
 * there are never changed (a regenerated key would make stored archives unreadable).
 * Returns the names it added.
 */
export async function ensureDevEnvFile(file: string): Promise<string[]> {
  const existing = existsSync(file) ? await readFile(file, "utf8") : "";
  const defined = new Set(
    existing
      .split("\n")
      .map((line) => /^\s*(?:export\s+)?([A-Z0-9_]+)\s*=/.exec(line)?.[1])
      .filter(Boolean),
  );
  const missing = Object.entries(generateDevDefaults()).filter(([name]) => !defined.has(name));
  if (missing.length === 0) return [];

  const header = existing
    ? ""
    : "# Development defaults written by `npm run dev` on first run. Never commit this file.\n";
  const separator = existing && !existing.endsWith("\n") ? "\n" : "";
  const lines = missing.map(([name, value]) => `${name}=${value}`).join("\n");
  await appendFile(file, `${separator}${header}${lines}\n`, { mode: 0o600 });
  return missing.map(([name]) => name);
}
