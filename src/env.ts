import os from "node:os";
import path from "node:path";
import { z } from "zod";

/**
 * The one validated configuration. Nothing else reads `process.env`: scripts load the
 * `.env*` files first (scripts/lib/load-env.ts, the way Next does) and then call
 * `getEnv()`, so the app, the scripts and the tests read the same settings.
 * Every variable is in `.env.example` and in the README's configuration table.
 */

const base64Key = z
  .string()
  .trim()
  .refine((value) => /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, "base64").length === 32, {
    message: "must be 32 random bytes encoded as base64 (openssl rand -base64 32)",
  });

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((value) => (value ? value : undefined));

/** An optional http(s) origin, no path (normalized: lower-case scheme and host, no trailing slash). */
const origin = optionalString.pipe(
  z
    .url({ protocol: /^https?$/, message: "must be an http(s) URL" })
    .refine((value) => URL.canParse(value) && ["", "/"].includes(new URL(value).pathname) && !/[?#]/.test(value), {
      message: "must be an origin with no path, such as https://wavault.example.com",
      abort: true,
    })
    .transform((value) => new URL(value).origin)
    .optional(),
);

const DAY_MS = 24 * 60 * 60 * 1000;
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const base64KeyList = z
  .string()
  .optional()
  .transform((value) => (value ?? "").split(",").map((key) => key.trim()).filter(Boolean))
  .pipe(z.array(base64Key));

/** What the tool scripts need before the app's secrets exist (install, setup). */
export const ToolEnvSchema = z.object({
  /** An explicit PocketBase binary; otherwise one is found on PATH or built into .bin/. */
  POCKETBASE_BIN: optionalString,
  /** An explicit Chromium; otherwise a system one or puppeteer's cache is used. */
  CHROME_PATH: optionalString,
});

export const EnvSchema = ToolEnvSchema.extend({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  POCKETBASE_URL: z.url({ protocol: /^https?$/, message: "must be an http(s) URL" }).default("http://127.0.0.1:8090"),
  POCKETBASE_ADMIN_EMAIL: z.email({ message: "must be the email of a PocketBase superuser" }),
  POCKETBASE_ADMIN_PASSWORD: z.string().min(10, { message: "must be at least 10 characters" }),
  POCKETBASE_DATA_DIR: z.string().trim().min(1).default("pocketbase/pb_data"),
  SESSION_ENCRYPTION_KEY: base64Key,
  SESSION_ENCRYPTION_OLD_KEYS: base64KeyList,
  SESSION_ARCHIVE_MAX_BYTES: positiveInt(50 * 1024 * 1024),
  GZIP_LEVEL: z.coerce.number().int().min(1).max(9).default(6),
  SESSION_RESTORE_MAX_ENTRIES: positiveInt(50_000),
  SESSION_RESTORE_MAX_BYTES: positiveInt(1024 * 1024 * 1024),
  SESSION_MEMORY_CACHE_MB: z.coerce.number().int().min(0).default(64),
  // At most 200: lease owners are "<prefix>/<INSTANCE_ID>/<8 hex>" within PocketBase's 255.
  // Printable ASCII: it goes in a header of every request forwarded between instances.
  INSTANCE_ID: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, { message: "must be printable ASCII without spaces" })
    .default(`${os.hostname()}-${process.pid}`),
  // Where users reach the app (https://wavault.example.com): in production the dashboard's
  // cookies are Secure exactly when it is https, whatever Host header a reverse proxy sends
  // (next.config.ts also lets sign-in forms come from it).
  PUBLIC_URL: origin,
  // The request header a proxy in front of the app sets to the client's address (x-real-ip,
  // x-forwarded-for: its last entry); the sign-in throttle then counts per address too.
  CLIENT_ADDRESS_HEADER: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, { message: "must be a header name, such as x-real-ip" })
      .transform((value) => value.toLowerCase())
      .optional(),
  ),
  // Where the other instances reach this one (forwarding a user's requests for the
  // sessions it runs); an origin, with no path. Unset: requests are not forwarded.
  INSTANCE_URL: origin,
  SESSION_TMP_DIR: z.string().trim().min(1).default(path.join(os.tmpdir(), "wavault-sessions")),
  // No new client while SESSION_TMP_DIR's disk has less free (0: no check); see disk-room.ts.
  SESSION_TMP_MIN_FREE_MB: z.coerce.number().int().min(0).default(1024),
  // At most a day, as PocketBase's lease routes accept (and below Node's timer limit of
  // 2^31 - 1 ms, past which a timer fires at once).
  SESSION_ARCHIVE_INTERVAL_MS: positiveInt(5 * 60 * 1000).pipe(z.number().max(DAY_MS)),
  SESSION_RESUME_INTERVAL_MS: z.coerce.number().int().min(0).max(DAY_MS).default(30_000),
  WA_WEB_VERSION: optionalString,
  WA_WEB_CACHE_DIR: optionalString,
  MAX_WHATSAPP_CONNECTIONS: positiveInt(100),
  SESSION_LEASE_TTL_MS: positiveInt(60_000).pipe(z.number().max(DAY_MS)),
  WHATSAPP_MEMORY_BUDGET_MB: z.coerce.number().int().positive().optional(),
  MAX_WHATSAPP_QR_WAITING: z.coerce.number().int().positive().optional(),
  SESSION_RETENTION_DAYS: positiveInt(30),
  SESSION_EVENTS_RETENTION_DAYS: positiveInt(7),
  CRON_SECRET: optionalString.pipe(z.string().min(16, { message: "must be at least 16 characters" }).optional()),
  STATUS_TOKEN: optionalString.pipe(z.string().min(16, { message: "must be at least 16 characters" }).optional()),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
});

export type Env = z.infer<typeof EnvSchema>;
export type ToolEnv = z.infer<typeof ToolEnvSchema>;

/** A configuration that cannot be used; the message names every bad variable. */
export class EnvError extends Error {
  readonly code = "invalid_configuration";
  constructor(readonly variables: string[], message: string) {
    super(message);
    this.name = "EnvError";
  }
}

function parseWith<S extends z.ZodType>(schema: S, raw: Record<string, string | undefined>): z.infer<S> {
  // An empty variable (`NAME=` as .env.example leaves most) means "unset": its default applies.
  const source = Object.fromEntries(Object.entries(raw).filter(([, value]) => value?.trim()));
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "?");
    const missing = issue.code === "invalid_type" && source[name] === undefined;
    return { name, text: `  ${name}: ${missing ? "is required but not set" : issue.message}` };
  });
  const variables = [...new Set(lines.map((line) => line.name))];
  throw new EnvError(
    variables,
    `Invalid configuration (see .env.example):\n${lines.map((line) => line.text).join("\n")}`,
  );
}

/**
 * Parses a configuration source (normally `process.env`).
 * @throws EnvError naming each missing or bad variable.
 */
export function parseEnv(source: Record<string, string | undefined>): Env {
  return parseWith(EnvSchema, source);
}

/** Parses only what the install and setup scripts need. @throws EnvError */
export function parseToolEnv(source: Record<string, string | undefined>): ToolEnv {
  return parseWith(ToolEnvSchema, source);
}

let cached: Env | undefined;

/**
 * The process's configuration, parsed once on first use (not at import, so that
 * `next build` can load route modules without the runtime secrets).
 * @throws EnvError naming each missing or bad variable.
 */
export function getEnv(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}
