import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";

import { ensureBrowser } from "../../scripts/lib/ensure-browser";
import { ensurePocketBaseBinary } from "../../scripts/lib/pocketbase-binary";
import { findFreePort, startPocketBase } from "../../scripts/lib/pocketbase-server";
import { parseToolEnv } from "../../src/env";

export interface ProvidedPocketBase {
  url: string;
  bin: string;
  dataDir: string;
  adminEmail: string;
  adminPassword: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    pocketbase: ProvidedPocketBase;
  }
}

/**
 * Makes sure the machine has what the tests drive (the pinned PocketBase, a Chromium),
 * then spawns one real PocketBase for the run: a free loopback port, a temporary data
 * directory, the project's migrations and hooks, a fresh superuser. Stopped afterwards.
 */
export default async function setup(project: TestProject) {
  const env = parseToolEnv(process.env);
  const log = (line: string) => console.log(`[test setup] ${line}`);
  const bin = await ensurePocketBaseBinary({ explicitBin: env.POCKETBASE_BIN, log });
  ensureBrowser(env.CHROME_PATH, log);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "wavault-test-pb-"));
  const adminEmail = "test-admin@wavault.test";
  const adminPassword = randomBytes(18).toString("base64url");

  const server = await startPocketBase({
    bin,
    dataDir,
    host: "127.0.0.1",
    port: await findFreePort(),
    superuserEmail: adminEmail,
    superuserPassword: adminPassword,
  });

  project.provide("pocketbase", { url: server.url, bin, dataDir, adminEmail, adminPassword });

  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
