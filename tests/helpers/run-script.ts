import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

import { PROJECT_ROOT } from "../../scripts/lib/load-env";

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `scripts/<name>` through tsx as an operator would, from the project root, with
 * `env` over this process's environment; `onLine` sees each stderr line as it comes (and
 * the script's process, to signal it).
 */
export function runProjectScript(
  name: string,
  env: Record<string, string>,
  args: string[],
  onLine?: (line: string, child: ChildProcess) => void,
): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "scripts", name), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      stderr += text;
      for (const line of text.split("\n").filter(Boolean)) onLine?.(line, child);
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
