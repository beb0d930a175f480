import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface GoInstallOptions {
  /** The `go` binary. */
  go: string;
  /** What `go install` builds, with its version: `module/path/cmd@vX.Y.Z`. */
  target: string;
  /** The name `go install` gives the binary (the package's last path element). */
  builtName: string;
  /** Where the binary ends up, as `<buildDir>/<name>`. */
  buildDir: string;
  name: string;
  /** `-X` stamps for `-ldflags` (a version the binary reports). */
  stamps?: Record<string, string>;
}

/**
 * Builds a Go command with `go install` (static, trimmed) into `<buildDir>/<name>`. It
 * builds into a scratch GOBIN and renames, so an interrupted build never leaves a
 * broken binary.
 * @throws Error with go's own output when the build fails.
 */
export async function goInstall(options: GoInstallOptions): Promise<string> {
  const { buildDir, name } = options;
  await mkdir(buildDir, { recursive: true });
  const scratch = await mkdtemp(path.join(buildDir, ".build-"));
  const stamps = Object.entries(options.stamps ?? {}).map(([key, value]) => ` -X ${key}=${value}`);
  try {
    await execFileAsync(options.go, ["install", "-trimpath", "-ldflags", `-s -w${stamps.join("")}`, options.target], {
      env: { ...process.env, GOBIN: scratch, CGO_ENABLED: "0", GOFLAGS: "-mod=mod" },
      cwd: scratch,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const built = path.join(buildDir, name);
    await rename(path.join(scratch, options.builtName), built);
    return built;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || String(error);
    throw new Error(`go install ${options.target} failed:\n${detail}`, { cause: error });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The version of a `go` binary ("1.26.8"), or null. */
export async function readGoVersion(go: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync(go, ["env", "GOVERSION"], { timeout: 15_000 });
    return /go(\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Compares dotted versions numerically: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
