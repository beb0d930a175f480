import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";

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

// NAME=value, NAME= (empty: unset, as a copy of .env.example leaves most), NAME="" and
// NAME= # a comment.
const ASSIGNMENT = /^\s*(?:export\s+)?([A-Z0-9_]+)\s*=(.*)$/;
const EMPTY_VALUE = /^\s*(?:""|'')?\s*(?:#.*)?$/;

/**
 * Gives `file` every development default it does not set yet: a variable it lacks is
 * added, one it leaves empty is filled in place. Values already there are never changed
 * (a regenerated key would make stored archives unreadable). Returns the names it set.
 */
export async function ensureDevEnvFile(file: string): Promise<string[]> {
  const existing = existsSync(file) ? await readFile(file, "utf8") : "";
  const defaults = generateDevDefaults();
  const set: string[] = [];
  // Lines are matched without a CRLF file's "\r" (dotenv reads such files too), which stays.
  const bodyOf = (line: string) => (line.endsWith("\r") ? line.slice(0, -1) : line);
  const eol = existing.includes("\r\n") ? "\r\n" : "\n";
  const lines = existing.split("\n").map((line) => {
    const [, name, value] = ASSIGNMENT.exec(bodyOf(line)) ?? [];
    if (!name || !(name in defaults)) return line;
    const fill = EMPTY_VALUE.test(value!) && !set.includes(name);
    if (fill) set.push(name);
    return fill ? `${name}=${defaults[name]}${line.endsWith("\r") ? "\r" : ""}` : line;
  });
  const defined = new Set(existing.split("\n").map((line) => ASSIGNMENT.exec(bodyOf(line))?.[1]));
  const missing = Object.entries(defaults).filter(([name]) => !defined.has(name));
  if (set.length === 0 && missing.length === 0) return [];

  const header = existing ? "" : `# Development defaults written by \`npm run dev\` on first run. Never commit this file.${eol}`;
  let text = lines.join("\n");
  if (missing.length > 0) {
    const separator = text && !text.endsWith("\n") ? eol : "";
    text = `${text}${separator}${header}${missing.map(([name, value]) => `${name}=${value}`).join(eol)}${eol}`;
  }
  await writeFile(file, text, { mode: 0o600 });
  return [...set, ...missing.map(([name]) => name)];
}
