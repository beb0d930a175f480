import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

import { EnvError, parseEnv } from "../src/env";

const valid = {
  POCKETBASE_ADMIN_EMAIL: "admin@example.com",
  POCKETBASE_ADMIN_PASSWORD: "a-long-enough-password",
  SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
};

function errorOf(source: Record<string, string | undefined>): EnvError {
  try {
    parseEnv(source);
  } catch (error) {
    if (error instanceof EnvError) return error;
    throw error;
  }
  throw new Error("parseEnv accepted a bad configuration");
}

describe("src/env.ts", () => {
  it("accepts a minimal configuration and fills in the documented defaults", () => {
    const env = parseEnv(valid);
    expect(env).toMatchObject({
      POCKETBASE_URL: "http://127.0.0.1:8090",
      POCKETBASE_DATA_DIR: "pocketbase/pb_data",
      SESSION_ARCHIVE_MAX_BYTES: 50 * 1024 * 1024,
      PORT: 3000,
      NODE_ENV: "development",
    });
    expect(env.CRON_SECRET).toBeUndefined();
  });

  it("reads every variable .env.example leaves empty as unset", () => {
    const example = readFileSync(path.join(import.meta.dirname, "..", ".env.example"), "utf8");
    const empty = Object.fromEntries(
      [...example.matchAll(/^([A-Z0-9_]+)=\s*$/gm)].map(([, name]) => [name!, ""]),
    );
    expect(Object.keys(empty)).toContain("WHATSAPP_MEMORY_BUDGET_MB");
    const env = parseEnv({ ...empty, ...valid });
    expect(env.WHATSAPP_MEMORY_BUDGET_MB).toBeUndefined();
    expect(env.SESSION_RETENTION_DAYS).toBe(30);
  });

  it("names each missing required variable", () => {
    const error = errorOf({});
    expect(error.variables.sort()).toEqual(
      ["POCKETBASE_ADMIN_EMAIL", "POCKETBASE_ADMIN_PASSWORD", "SESSION_ENCRYPTION_KEY"].sort(),
    );
    expect(error.message).toContain("POCKETBASE_ADMIN_EMAIL: is required but not set");
  });

  it.each([
    ["SESSION_ENCRYPTION_KEY", randomBytes(16).toString("base64"), "32 random bytes"],
    ["SESSION_ENCRYPTION_KEY", "not base64 at all!", "32 random bytes"],
    ["POCKETBASE_URL", "ftp://example.com", "http(s) URL"],
    ["POCKETBASE_URL", "localhost:8090", "http(s) URL"],
    ["POCKETBASE_ADMIN_EMAIL", "not-an-email", "email"],
    ["POCKETBASE_ADMIN_PASSWORD", "short", "at least 10"],
    ["CRON_SECRET", "tiny", "at least 16"],
    ["PORT", "70000", ""],
    ["SESSION_ARCHIVE_MAX_BYTES", "-1", ""],
    ["NODE_ENV", "staging", ""],
    ["GZIP_LEVEL", "10", ""],
    ["SESSION_ENCRYPTION_OLD_KEYS", `${randomBytes(32).toString("base64")},short`, "32 random bytes"],
    ["SESSION_MEMORY_CACHE_MB", "-5", ""],
    ["PUBLIC_URL", "wavault.example.com", "http(s) URL"],
    ["PUBLIC_URL", "https://wavault.example.com/app", "origin with no path"],
    ["INSTANCE_URL", "10.0.0.5:3000", "http(s) URL"],
    ["INSTANCE_URL", "http://10.0.0.5:3000/app", "origin with no path"],
    ["CLIENT_ADDRESS_HEADER", "x-real-ip: 1.2.3.4", "header name"],
    ["MAX_WHATSAPP_QR_WAITING", "0", ""],
    ["INSTANCE_URL", "http://10.0.0.5:3000/?x=1", "origin with no path"],
    ["INSTANCE_ID", "instance-ā", "printable ASCII"],
    ["INSTANCE_ID", "web 1", "printable ASCII"],
    // Past Node's timer limit (2^31 - 1 ms) a timer fires at once: every lease would lapse on its claim.
    ["SESSION_LEASE_TTL_MS", "3000000000", "<=86400000"],
    ["SESSION_ARCHIVE_INTERVAL_MS", "86400001", "<=86400000"],
  ])("rejects %s=%j with a message naming it", (name, value, hint) => {
    const error = errorOf({ ...valid, [name]: value });
    expect(error.variables).toEqual([name]);
    expect(error.message).toContain(`${name}:`);
    expect(error.message).toContain(hint);
  });

  it("reads SESSION_ENCRYPTION_OLD_KEYS as a comma-separated list", () => {
    const [a, b] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];
    expect(parseEnv({ ...valid, SESSION_ENCRYPTION_OLD_KEYS: ` ${a}, ${b} ` }).SESSION_ENCRYPTION_OLD_KEYS).toEqual([a, b]);
    expect(parseEnv(valid).SESSION_ENCRYPTION_OLD_KEYS).toEqual([]);
  });

  it("reads PUBLIC_URL as an origin, whatever the case of its scheme", () => {
    expect(parseEnv({ ...valid, PUBLIC_URL: "HTTPS://Wavault.Example.com/" }).PUBLIC_URL).toBe("https://wavault.example.com");
  });

  it("reads INSTANCE_URL as an origin", () => {
    expect(parseEnv({ ...valid, INSTANCE_URL: " http://10.0.0.5:3000/ " }).INSTANCE_URL).toBe("http://10.0.0.5:3000");
    expect(parseEnv({ ...valid, INSTANCE_URL: "https://App-1.internal" }).INSTANCE_URL).toBe("https://app-1.internal");
    expect(parseEnv(valid).INSTANCE_URL).toBeUndefined();
  });

  it("treats an empty optional variable as unset", () => {
    expect(parseEnv({ ...valid, CRON_SECRET: "", CHROME_PATH: " " }).CRON_SECRET).toBeUndefined();
  });

  it("stops `npm start` with a message naming the bad variable", async () => {
    const root = path.resolve(import.meta.dirname, "..");
    const run = promisify(execFile)(path.join(root, "node_modules/.bin/tsx"), ["scripts/start.ts"], {
      cwd: root,
      env: { ...process.env, ...valid, SESSION_ENCRYPTION_KEY: "dG9vIHNob3J0", POCKETBASE_URL: "http://127.0.0.1:1" },
    });
    await expect(run).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("SESSION_ENCRYPTION_KEY: must be 32 random bytes"),
    });
  });
});
