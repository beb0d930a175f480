import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

import { EnvError, getEnv, type Env } from "../../src/env";
import { ensureDevEnvFile } from "./dev-env-file";
import { ensureBrowser } from "./ensure-browser";
import { loadProjectEnv, PROJECT_ROOT } from "./load-env";
import { ensurePocketBaseBinary } from "./pocketbase-binary";
import { startPocketBase, type RunningPocketBase } from "./pocketbase-server";

const log = (line: string) => console.log(`[wavault] ${line}`);

/** True when POCKETBASE_URL points at this machine, so this script runs the server itself. */
function isLoopback(url: URL): boolean {
  return ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

/**
 * Runs the whole stack in the foreground: a local PocketBase (when POCKETBASE_URL is a
 * loopback address) with the project's migrations and hooks, and Next.js (`next dev` or
 * `next start`). Ctrl-C or SIGTERM stops both; if either exits, the other is stopped too.
 */
export async function runStack(mode: "dev" | "start"): Promise<void> {
  if (mode === "dev") {
    const added = await ensureDevEnvFile(path.join(PROJECT_ROOT, ".env.local"));
    if (added.length > 0) log(`wrote development defaults to .env.local: ${added.join(", ")}`);
  }
  loadProjectEnv(mode === "dev" ? "development" : "production");

  let env: Env;
  try {
    env = getEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const browser = ensureBrowser(env.CHROME_PATH, log);
  log(`Chromium: ${browser.path} (${browser.source})`);

  // From here on a stop signal stops whatever has started, in order: the app first (its
  // last archives need PocketBase), then PocketBase, which runs in a process group of its
  // own and would otherwise outlive this process (a closed terminal's SIGHUP, say).
  const app: { next?: ChildProcess } = {};
  let pocketbaseStarting: Promise<RunningPocketBase> | undefined;
  let stopping = false;
  const stopAll = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    const { next } = app;
    if (next && next.exitCode === null && next.signalCode === null) {
      const exited = new Promise((resolve) => next.once("exit", resolve));
      next.kill("SIGTERM");
      await exited;
    }
    const running = await pocketbaseStarting?.catch(() => undefined);
    await running?.stop();
    process.exit(exitCode);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stopAll(0));

  let pocketbase: RunningPocketBase | undefined;
  const pbUrl = new URL(env.POCKETBASE_URL);
  if (isLoopback(pbUrl)) {
    const bin = await ensurePocketBaseBinary({ explicitBin: env.POCKETBASE_BIN, log });
    pocketbaseStarting = startPocketBase({
      bin,
      dataDir: path.resolve(PROJECT_ROOT, env.POCKETBASE_DATA_DIR),
      host: pbUrl.hostname.replace(/^\[|\]$/g, ""),
      port: Number(pbUrl.port || 80),
      superuserEmail: env.POCKETBASE_ADMIN_EMAIL,
      superuserPassword: env.POCKETBASE_ADMIN_PASSWORD,
      hooksWatch: mode === "dev",
      output: "inherit",
      // Stopped below, after Next: the app's last archives and lease releases need it.
      ownProcessGroup: true,
    });
    pocketbase = await pocketbaseStarting;
    log(`PocketBase ${pocketbase.url} (admin UI: ${pocketbase.url}/_/)`);
  } else {
    log(`using the PocketBase at ${pbUrl.origin}`);
  }

  const nextBin = path.join(PROJECT_ROOT, "node_modules", ".bin", "next");
  if (stopping) return; // a signal came while PocketBase started: stopAll has it
  const next = (app.next = spawn(nextBin, [mode, "--port", String(env.PORT)], {
    cwd: PROJECT_ROOT,
    stdio: "inherit",
    // Next would exit on SIGTERM at once; instrumentation.ts stops the WhatsApp clients
    // (a final archive each) and then exits. `next dev` kills its server 100 ms after
    // passing a signal on unless told to wait: it gets the 30 s a stop may take.
    env: { NEXT_EXIT_TIMEOUT_MS: "35000", ...process.env, NEXT_MANUAL_SIG_HANDLE: "true" },
  }));

  next.once("exit", (code) => void stopAll(code ?? 0));
  pocketbase?.process.once("exit", (code) => {
    if (!stopping) console.error(`[wavault] PocketBase exited unexpectedly (code ${code}); stopping.`);
    void stopAll(1);
  });
}
