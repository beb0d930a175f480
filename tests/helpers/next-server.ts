import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { inject } from "vitest";

import { PROJECT_ROOT } from "../../scripts/lib/load-env";
import { findFreePort, runToExit } from "../../scripts/lib/pocketbase-server";

const NEXT_BIN = path.join(PROJECT_ROOT, "node_modules", "next", "dist", "bin", "next");

/**
 * `next build`, once per test run however many files ask (vitest runs files in
 * parallel workers): the first to take the lock builds, the others wait for its verdict.
 */
export async function ensureNextBuild(): Promise<void> {
  const runDir = path.join(inject("archiveWorkDir"), "next-build");
  const verdict = path.join(runDir, "verdict.json");
  try {
    await mkdir(runDir); // atomic: only one worker gets to build
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const deadline = Date.now() + 5 * 60_000;
    while (!existsSync(verdict)) {
      if (Date.now() > deadline) throw new Error("another test worker's next build gave no verdict within 5 minutes");
      await delay(250);
    }
    const { ok, output } = JSON.parse(await readFile(verdict, "utf8")) as { ok: boolean; output: string };
    if (!ok) throw new Error(`next build failed:\n${output}`);
    return;
  }
  const { code, output } = await runToExit(process.execPath, [NEXT_BIN, "build"], { NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" }, undefined, PROJECT_ROOT);
  await writeFile(verdict, JSON.stringify({ ok: code === 0, output }));
  if (code !== 0) throw new Error(`next build failed:\n${output}`);
}

export interface NextServer {
  url: string;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM (the app's graceful shutdown), then SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts `next start` on a free loopback port with `env` on top of the test process's
 * (a function of the server's URL when a variable names it, INSTANCE_URL say).
 */
export async function startNextServer(env: Record<string, string> | ((url: string) => Record<string, string>)): Promise<NextServer> {
  await ensureNextBuild();
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  if (typeof env === "function") env = env(url);
  const child: ChildProcess = spawn(process.execPath, [NEXT_BIN, "start", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: PROJECT_ROOT,
    // No resuming unless a test asks: the shared PocketBase holds other tests' sessions.
    env: { ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1", NEXT_MANUAL_SIG_HANDLE: "true", SESSION_RESUME_INTERVAL_MS: "0", PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async (timeoutMs = 30_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited (${child.exitCode}):\n${output}`);
    if (output.includes("Failed to prepare server")) {
      await stop(1_000);
      throw new Error(`next start could not start the app:\n${output}`);
    }
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop(1_000);
      throw new Error(`next start did not answer within 60 s:\n${output}`);
    }
    await delay(200);
  }
  return { url, output: () => output, stop };
}
