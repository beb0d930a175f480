import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";

import { ensureBrowser } from "../../scripts/lib/ensure-browser";
import { ensurePocketBaseBinary } from "../../scripts/lib/pocketbase-binary";
import { startThrowawayPocketBase } from "../../scripts/lib/pocketbase-server";
import { parseToolEnv } from "../../src/env";
import { ensureS3ServerBinary } from "../helpers/s3-server";

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
    /** Where the tests' archivers write archives; removed after the run. */
    archiveWorkDir: string;
    /** The S3 server binary the S3 storage tests start (tests/helpers/s3-server.ts). */
    s3ServerBin: string;
  }
}

/**
 * Makes sure the machine has what the tests drive (the pinned PocketBase, a Chromium,
 * the pinned S3 server),
 * then spawns one real PocketBase for the run: a free loopback port, a temporary data
 * directory, the project's migrations and hooks, a fresh superuser. Stopped afterwards,
 * and the scratch directory for the tests' archives removed.
 */
export default async function setup(project: TestProject) {
  const env = parseToolEnv(process.env);
  const log = (line: string) => console.log(`[test setup] ${line}`);
  const bin = await ensurePocketBaseBinary({ explicitBin: env.POCKETBASE_BIN, log });
  ensureBrowser(env.CHROME_PATH, log);
  project.provide("s3ServerBin", await ensureS3ServerBinary(log));

  const server = await startThrowawayPocketBase(bin, { adminEmail: "test-admin@wavault.test" });
  const { url, dataDir, adminEmail, adminPassword } = server;
  project.provide("pocketbase", { url, bin, dataDir, adminEmail, adminPassword });
  const archiveWorkDir = await mkdtemp(path.join(os.tmpdir(), "wavault-test-archives-"));
  project.provide("archiveWorkDir", archiveWorkDir);

  return async () => {
    await server.dispose();
    await rm(archiveWorkDir, { recursive: true, force: true });
  };
}
