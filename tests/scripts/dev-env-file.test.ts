import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ensureDevEnvFile } from "../../scripts/lib/dev-env-file";
import { parseEnv } from "../../src/env";

function parseDotenv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => /^[A-Z0-9_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

describe("ensureDevEnvFile", () => {
  let file: string;
  beforeEach(async () => {
    file = path.join(await mkdtemp(path.join(os.tmpdir(), "wavault-envfile-")), ".env.local");
  });
  afterEach(async () => {
    await rm(path.dirname(file), { recursive: true, force: true });
  });

  it("writes a complete, valid development configuration on first run", async () => {
    const added = await ensureDevEnvFile(file);
    expect(added).toEqual([
      "POCKETBASE_URL",
      "POCKETBASE_ADMIN_EMAIL",
      "POCKETBASE_ADMIN_PASSWORD",
      "SESSION_ENCRYPTION_KEY",
      "CRON_SECRET",
      "STATUS_TOKEN",
    ]);
    const env = parseEnv(parseDotenv(await readFile(file, "utf8")));
    expect(env.CRON_SECRET).toBeDefined();
    expect(env.STATUS_TOKEN).toBeDefined();
  });

  it("never changes a value that is already there", async () => {
    await ensureDevEnvFile(file);
    const first = await readFile(file, "utf8");
    expect(await ensureDevEnvFile(file)).toEqual([]);
    expect(await readFile(file, "utf8")).toBe(first);
  });

  it("adds only what a hand-written file lacks", async () => {
    await writeFile(file, "SESSION_ENCRYPTION_KEY=keep-me\nPOCKETBASE_URL=http://127.0.0.1:9999");
    const added = await ensureDevEnvFile(file);
    expect(added).not.toContain("SESSION_ENCRYPTION_KEY");
    expect(added).not.toContain("POCKETBASE_URL");
    const values = parseDotenv(await readFile(file, "utf8"));
    expect(values.SESSION_ENCRYPTION_KEY).toBe("keep-me");
    expect(values.POCKETBASE_URL).toBe("http://127.0.0.1:9999");
    expect(values.POCKETBASE_ADMIN_PASSWORD).toMatch(/^\S{20,}$/);
  });

  it("fills in place what a copy of .env.example leaves empty, and keeps the rest", async () => {
    const example = await readFile(path.join(import.meta.dirname, "../../.env.example"), "utf8");
    await writeFile(file, example);
    const added = await ensureDevEnvFile(file);
    expect(added).toEqual(expect.arrayContaining(["POCKETBASE_ADMIN_EMAIL", "POCKETBASE_ADMIN_PASSWORD", "SESSION_ENCRYPTION_KEY"]));
    const text = await readFile(file, "utf8");
    for (const name of added) expect(text.match(new RegExp(`^${name}=`, "gm"))).toHaveLength(1); // no second definition
    const kept = example.split("\n").filter((line) => !added.some((name) => line.startsWith(`${name}=`)));
    expect(text.split("\n").filter((line) => !added.some((name) => line.startsWith(`${name}=`)))).toEqual(kept);
    expect(parseEnv(parseDotenv(text)).POCKETBASE_ADMIN_EMAIL).toBe("admin@wavault.local");
    expect(await ensureDevEnvFile(file)).toEqual([]);
  });

  it("reads a file with Windows line endings as it is, and never gives it a second key", async () => {
    await writeFile(file, "SESSION_ENCRYPTION_KEY=keep-me\r\nPOCKETBASE_ADMIN_EMAIL=\r\n");
    const added = await ensureDevEnvFile(file);
    expect(added).not.toContain("SESSION_ENCRYPTION_KEY");
    expect(added).toContain("POCKETBASE_ADMIN_EMAIL");
    const text = await readFile(file, "utf8");
    expect(text.match(/^SESSION_ENCRYPTION_KEY=/gm)).toHaveLength(1);
    expect(text).toContain("SESSION_ENCRYPTION_KEY=keep-me\r\nPOCKETBASE_ADMIN_EMAIL=admin@wavault.local\r\n");
    expect(text.split("\n").slice(0, -1).every((line) => line.endsWith("\r"))).toBe(true);
  });
});
