import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import net from "node:net";
import path from "node:path";

import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { PROJECT_ROOT } from "./load-env";

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, "pocketbase/pb_migrations");
export const HOOKS_DIR = path.join(PROJECT_ROOT, "pocketbase/pb_hooks");

export interface PocketBaseServerOptions {
  bin: string;
  dataDir: string;
  host: string;
  port: number;
  superuserEmail: string;
  superuserPassword: string;
  /** Extra environment for the server (its JS migrations and hooks read it with $os.getenv). */
  env?: Record<string, string | undefined>;
  /** Restart on pb_hooks changes (development only). */
  hooksWatch?: boolean;
  /** Where the server's output goes: inherited by a terminal, or kept for error messages. */
  output?: "inherit" | "capture";
  /**
   * In a process group of its own: a terminal's Ctrl-C (sent to the whole foreground
   * group) then does not stop it while the app it serves still saves its sessions; the
   * caller stops it after the app (npm run dev / npm start).
   */
  ownProcessGroup?: boolean;
  startTimeoutMs?: number;
}

export interface RunningPocketBase {
  url: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
}

export class PocketBaseStartError extends Error {
  readonly code = "pocketbase_start_failed";
}

/**
 * The flags for any PocketBase command: the data dir, the project's migrations and hooks,
 * and dev mode off. PocketBase turns dev mode on by itself when its binary lies under the
 * OS temp dir (it takes that for `go run`), and then prints every SQL statement with its
 * values — users' emails and password hashes among them — to its output.
 */
/**
 * The flags every PocketBase command of the project gets. `--automigrate=false`: a
 * collection changed in the dashboard (an operator raising the archive limit, say) or
 * through the API would otherwise write a migration into the project's pb_migrations,
 * which are hand-written and the schema's only source.
 */
export function projectArgs(dataDir: string): string[] {
  return [`--dir=${dataDir}`, `--migrationsDir=${MIGRATIONS_DIR}`, `--hooksDir=${HOOKS_DIR}`, "--dev=false", "--automigrate=false"];
}

/**
 * Creates or updates the superuser (applying pending migrations first, as every
 * PocketBase command does on bootstrap).
 * @throws PocketBaseStartError with the command's output.
 */
export async function upsertSuperuser(options: PocketBaseServerOptions): Promise<void> {
  await mkdir(options.dataDir, { recursive: true });
  const { code, output } = await runToExit(
    options.bin,
    // "--" ends the flags: a password may start with "-" (random ones do, 1 time in 64),
    // and PocketBase's CLI would otherwise read it as flags and ignore it.
    ["superuser", "upsert", ...projectArgs(options.dataDir), "--", options.superuserEmail, options.superuserPassword],
    options.env,
  );
  if (code !== 0) {
    throw new PocketBaseStartError(`pocketbase superuser upsert exited with ${code}:\n${output}`);
  }
}

/**
 * Starts `pocketbase serve` with the project's migrations and hooks, upserts the
 * superuser first, and resolves once `/api/health` answers.
 * @throws PocketBaseStartError when the port is taken, the server exits, or it never gets healthy.
 */
export async function startPocketBase(options: PocketBaseServerOptions): Promise<RunningPocketBase> {
  const url = `http://${options.host}:${options.port}`;
  if (!(await isPortFree(options.host, options.port))) {
    throw new PocketBaseStartError(
      `Port ${options.port} on ${options.host} is already in use, so PocketBase cannot start there. ` +
        "Stop whatever holds it, or point POCKETBASE_URL at another port.",
    );
  }
  await upsertSuperuser(options);

  const child = spawn(
    options.bin,
    ["serve", `--http=${options.host}:${options.port}`, `--hooksWatch=${options.hooksWatch ?? false}`, ...projectArgs(options.dataDir)],
    { env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"], detached: options.ownProcessGroup ?? false },
  );
  let output = "";
  // "Server started at …" comes from this child once it has bound its port: proof that
  // the server answering there is ours, not another one that took the port meanwhile.
  const started = new Promise<void>((resolve) => {
    const collect = (chunk: Buffer, into: NodeJS.WriteStream) => {
      if (options.output === "inherit") into.write(chunk);
      output = (output + chunk.toString()).slice(-8192);
      if (output.includes("Server started at")) resolve();
    };
    child.stdout.on("data", (chunk: Buffer) => collect(chunk, process.stdout));
    child.stderr.on("data", (chunk: Buffer) => collect(chunk, process.stderr));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // Never outlive this process, even when it dies of an uncaught error.
  const killOnExit = () => child.kill("SIGTERM");
  process.once("exit", killOnExit);
  void exited.then(() => process.off("exit", killOnExit));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      started,
      exited.then((code) => Promise.reject(new Error(`PocketBase exited with code ${code} before it was serving.`))),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`PocketBase did not start within ${timeoutMs} ms.`)), timeoutMs))),
    ]);
    await waitForHealth(url, exited, timeoutMs);
  } catch (error) {
    await stop();
    throw new PocketBaseStartError(`${(error as Error).message}\n${output}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  return { url, process: child, stop };
}

async function waitForHealth(url: string, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone: number | null | undefined;
  void exited.then((code) => (gone = code));
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`PocketBase exited with code ${gone} before it was healthy.`);
    try {
      const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    // The server offers no readiness event to await, so poll its health endpoint.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`PocketBase did not answer ${url}/api/health within ${timeoutMs} ms.`);
}

/** True when nothing listens on host:port. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port on host that was free a moment ago (for tests and throwaway servers). */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion and returns its exit code and combined output. */
export function runToExit(
  bin: string,
  args: string[],
  env?: Record<string, string | undefined>,
  input?: string,
  cwd?: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
    child.stdin.end(input ?? "");
  });
}

export interface ThrowawayPocketBase extends RunningPocketBase {
  dataDir: string;
  adminEmail: string;
  adminPassword: string;
  /** A new superuser client for it. */
  admin(): ReturnType<typeof createServiceClient>;
  /** Stops the server and deletes its data. */
  dispose(): Promise<void>;
}

/**
 * A PocketBase for tests and benchmarks: a free loopback port, a temporary data dir
 * with the project's migrations and hooks, and a superuser with a random password;
 * `env` is its own environment's addition (what its migrations and hooks read).
 * Loopback is excluded from its rate limits (a test run signs in far more often than
 * any one client should), unless `rateLimitLoopback`.
 */
export async function startThrowawayPocketBase(
  bin: string,
  credentials: { adminEmail?: string; adminPassword?: string } = {},
  env?: Record<string, string>,
  { rateLimitLoopback = false }: { rateLimitLoopback?: boolean } = {},
): Promise<ThrowawayPocketBase> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "wavault-pb-"));
  const adminEmail = credentials.adminEmail ?? "admin@wavault.test";
  const adminPassword = credentials.adminPassword ?? randomBytes(18).toString("base64url");
  try {
    const server = await startPocketBase({
      bin,
      dataDir,
      host: "127.0.0.1",
      port: await findFreePort(),
      superuserEmail: adminEmail,
      superuserPassword: adminPassword,
      env,
    });
    const admin = () => createServiceClient({ url: server.url, email: adminEmail, password: adminPassword });
    if (!rateLimitLoopback) {
      try {
        await (await admin()).settings.update({ rateLimits: { excludedIPs: ["127.0.0.1", "::1"] } });
      } catch (error) {
        await server.stop();
        throw error;
      }
    }
    return {
      ...server,
      dataDir,
      adminEmail,
      adminPassword,
      admin,
      async dispose() {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
