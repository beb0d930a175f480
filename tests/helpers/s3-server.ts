import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type PocketBase from "pocketbase";

import { goInstall } from "../../scripts/lib/go-install";
import { PROJECT_ROOT } from "../../scripts/lib/load-env";
import { findFreePort } from "../../scripts/lib/pocketbase-server";
import { findExecutableOnPath } from "../../src/lib/system/find-executable";

const execFileAsync = promisify(execFile);

/**
 * The S3 server the tests store archives in when PocketBase's S3 storage is on: Versity's
 * S3 gateway (Apache 2.0), a production S3 server over a plain directory, pinned and
 * built with Go like PocketBase. AWS itself cannot be reached from here.
 */
export const VERSITYGW_VERSION = "1.8.0";
const MODULE = "github.com/versity/versitygw";
const BIN = path.join(PROJECT_ROOT, ".bin", "versitygw");

/** `.bin/versitygw` of the pinned version, built with the machine's Go on first use. */
export async function ensureS3ServerBinary(log: (line: string) => void = () => {}): Promise<string> {
  if (existsSync(BIN) && (await readVersion(BIN)) === VERSITYGW_VERSION) return BIN;
  const go = findExecutableOnPath("go", process.env.PATH ?? "");
  if (!go) throw new Error(`The S3 tests need Versity's S3 gateway ${VERSITYGW_VERSION}, built with Go: no \`go\` on PATH.`);
  log(`Building Versity's S3 gateway ${VERSITYGW_VERSION} with Go for the S3 storage tests (first run only; a minute or two)…`);
  return goInstall({
    go,
    target: `${MODULE}/cmd/versitygw@v${VERSITYGW_VERSION}`,
    builtName: "versitygw",
    buildDir: path.dirname(BIN),
    name: "versitygw",
    stamps: { "main.Version": VERSITYGW_VERSION },
  });
}

async function readVersion(bin: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync(bin, ["--version"], { timeout: 15_000 });
    return /Version\s*:\s*(\S+)/.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}

export interface RunningS3Server {
  url: string;
  bucket: string;
  accessKey: string;
  secret: string;
  /** The objects under `prefix` in the bucket, as keys ("<collection id>/<record id>/<file name>"). */
  objects(prefix?: string): Promise<string[]>;
  /**
   * Copies a directory tree into the bucket, each file an object keyed by its relative
   * path and last modified when the file was, leaving out PocketBase's `.attrs`
   * sidecars (as the README's `aws s3 sync … --exclude "*.attrs"` does).
   */
  syncFrom(dir: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the gateway on a free loopback port, over a new directory with one empty bucket. */
export async function startS3Server(bin: string): Promise<RunningS3Server> {
  const root = await mkdtemp(path.join(os.tmpdir(), "wavault-s3-"));
  const bucket = "wavault-archives";
  await mkdir(path.join(root, bucket)); // the gateway's buckets are the root's directories
  const port = await findFreePort();
  const accessKey = `test-${randomBytes(6).toString("hex")}`;
  const secret = randomBytes(24).toString("base64url");
  const child = spawn(bin, ["--port", `127.0.0.1:${port}`, "--quiet", "posix", root], {
    env: { ...process.env, ROOT_ACCESS_KEY: accessKey, ROOT_SECRET_KEY: secret },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
    await rm(root, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, child, () => stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    bucket,
    accessKey,
    secret,
    async objects(prefix = "") {
      const dir = path.join(root, bucket, prefix);
      if (!existsSync(dir)) return [];
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(path.join(root, bucket), path.join(entry.parentPath, entry.name)))
        .sort();
    },
    async syncFrom(dir) {
      await cp(dir, path.join(root, bucket), { recursive: true, preserveTimestamps: true, filter: (source) => !source.endsWith(".attrs") });
    },
    stop,
  };
}

/** Points PocketBase's file storage at an S3 server (the setting an operator changes in PocketBase's dashboard). */
export async function useS3Storage(admin: PocketBase, s3: Pick<RunningS3Server, "bucket" | "accessKey" | "secret">, endpoint: string) {
  await admin.settings.update({
    s3: { enabled: true, bucket: s3.bucket, region: "us-east-1", endpoint, accessKey: s3.accessKey, secret: s3.secret, forcePathStyle: true },
  });
}

async function waitForPort(port: number, child: ReturnType<typeof spawn>, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`The S3 gateway exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`The S3 gateway did not listen on port ${port} within 20 s: ${output()}`);
}
