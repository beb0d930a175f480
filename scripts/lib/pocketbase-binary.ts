import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

import { findExecutableOnPath } from "../../src/lib/system/find-executable";
import { compareVersions, goInstall, readGoVersion } from "./go-install";
import { PROJECT_ROOT } from "./load-env";

const execFileAsync = promisify(execFile);

/** The one pinned PocketBase server version (the JS SDK in package.json supports it). */
export const POCKETBASE_VERSION = "0.39.11";
/** The oldest Go that builds the pinned server (its go.mod says `go 1.25.0`). */
export const MIN_GO_VERSION = "1.25";

const MODULE = "github.com/pocketbase/pocketbase";
const DEFAULT_BUILD_DIR = path.join(PROJECT_ROOT, ".bin");

export class PocketBaseBinaryError extends Error {
  readonly code = "pocketbase_binary_unavailable";
}

export interface EnsurePocketBaseOptions {
  /** An explicit binary (POCKETBASE_BIN); used as it is. */
  explicitBin?: string;
  /** Where a built binary goes; defaults to the gitignored `.bin/`. */
  buildDir?: string;
  /** The PATH searched for `pocketbase` and `go`; defaults to this process's. */
  searchPath?: string;
  log?: (line: string) => void;
}

/**
 * Returns a PocketBase binary of the pinned version: POCKETBASE_BIN if set, else a
 * `pocketbase` on PATH that reports the pinned version, else `.bin/pocketbase`, building
 * it with the machine's Go on first use.
 * @throws PocketBaseBinaryError when there is neither a binary nor a Go able to build one.
 */
export async function ensurePocketBaseBinary(options: EnsurePocketBaseOptions = {}): Promise<string> {
  const log = options.log ?? (() => {});
  const searchPath = options.searchPath ?? process.env.PATH ?? "";
  const buildDir = options.buildDir ?? DEFAULT_BUILD_DIR;

  if (options.explicitBin) {
    if (!existsSync(options.explicitBin)) {
      throw new PocketBaseBinaryError(`POCKETBASE_BIN is set to ${options.explicitBin}, which does not exist.`);
    }
    const version = await readPocketBaseVersion(options.explicitBin);
    if (version !== POCKETBASE_VERSION) {
      log(`warning: POCKETBASE_BIN reports version ${version ?? "unknown"}; wavault is tested with ${POCKETBASE_VERSION}`);
    }
    return options.explicitBin;
  }

  const onPath = findExecutableOnPath("pocketbase", searchPath);
  if (onPath && (await readPocketBaseVersion(onPath)) === POCKETBASE_VERSION) return onPath;

  const built = path.join(buildDir, "pocketbase");
  if (existsSync(built) && (await readPocketBaseVersion(built)) === POCKETBASE_VERSION) return built;

  await buildPocketBase(buildDir, searchPath, log);
  return built;
}

/** The version a PocketBase binary reports (`pocketbase --version`), or null. */
export async function readPocketBaseVersion(bin: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync(bin, ["--version"], { timeout: 15_000 });
    return /version\s+v?(\S+)/.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function buildPocketBase(buildDir: string, searchPath: string, log: (line: string) => void) {
  const go = findExecutableOnPath("go", searchPath);
  const goVersion = go ? await readGoVersion(go) : null;
  if (!go || !goVersion || compareVersions(goVersion, MIN_GO_VERSION) < 0) {
    const found = go ? `found Go ${goVersion ?? "of unknown version"} at ${go}` : "found no `go` on PATH";
    throw new PocketBaseBinaryError(
      [
        `PocketBase ${POCKETBASE_VERSION} is needed and none was found (${found}).`,
        "Get one of these, then run the command again:",
        `  - Go >= ${MIN_GO_VERSION} (https://go.dev/dl/): wavault builds PocketBase into .bin/ by itself, or`,
        `  - the PocketBase ${POCKETBASE_VERSION} binary for your platform from`,
        `    https://github.com/pocketbase/pocketbase/releases/tag/v${POCKETBASE_VERSION}, unzipped,`,
        "    with POCKETBASE_BIN=/path/to/pocketbase set in the environment or .env.local.",
      ].join("\n"),
    );
  }

  log(`Building PocketBase ${POCKETBASE_VERSION} with Go ${goVersion} (first run only; about a minute)…`);
  try {
    await goInstall({
      go,
      target: `${MODULE}/examples/base@v${POCKETBASE_VERSION}`,
      builtName: "base",
      buildDir,
      name: "pocketbase",
      stamps: { [`${MODULE}.Version`]: POCKETBASE_VERSION },
    });
  } catch (error) {
    throw new PocketBaseBinaryError(`Building PocketBase ${POCKETBASE_VERSION} with Go failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  log(`PocketBase ${POCKETBASE_VERSION} built into ${path.join(buildDir, "pocketbase")}`);
}
