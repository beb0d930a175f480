import { readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { findExecutableOnPath, isExecutableFile } from "../system/find-executable";

export type ChromiumSource = "CHROME_PATH" | "system" | "puppeteer-cache";

export interface FoundChromium {
  path: string;
  source: ChromiumSource;
}

/** CHROME_PATH names something that is not an executable file. */
export class ChromePathInvalidError extends Error {
  readonly code = "chrome_path_invalid";
  constructor(readonly chromePath: string) {
    super(`CHROME_PATH is set to ${chromePath}, which is not an executable file.`);
    this.name = "ChromePathInvalidError";
  }
}

/** The names a system Chromium or Chrome goes by, in the order they are preferred. */
export const SYSTEM_BROWSER_NAMES = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"];

export interface FindChromiumOptions {
  /** The configured CHROME_PATH, if any; it wins and must be valid. */
  chromePath?: string;
  /** Directories searched for the system browser names. */
  searchPath?: string;
  /** puppeteer's browser cache (its default is ~/.cache/puppeteer). */
  puppeteerCacheDir?: string;
}

/**
 * Finds a Chromium: CHROME_PATH, then a system chromium/chrome on PATH, then a browser
 * in puppeteer's cache. Returns null when there is none.
 * @throws ChromePathInvalidError when CHROME_PATH is set but unusable.
 */
export function findChromium(options: FindChromiumOptions = {}): FoundChromium | null {
  if (options.chromePath) {
    if (!isExecutableFile(options.chromePath)) throw new ChromePathInvalidError(options.chromePath);
    return { path: options.chromePath, source: "CHROME_PATH" };
  }

  const searchPath = options.searchPath ?? ["/usr/bin", "/usr/local/bin", "/snap/bin", "/opt/google/chrome"].join(path.delimiter);
  for (const name of SYSTEM_BROWSER_NAMES) {
    const found = findExecutableOnPath(name, searchPath);
    if (found) return { path: found, source: "system" };
  }

  const cached = findInPuppeteerCache(options.puppeteerCacheDir ?? path.join(os.homedir(), ".cache", "puppeteer"));
  return cached ? { path: cached, source: "puppeteer-cache" } : null;
}

/** The newest `chrome/<platform>-<version>/chrome-linux64/chrome` in a puppeteer cache. */
function findInPuppeteerCache(cacheDir: string): string | null {
  let builds: string[];
  try {
    builds = readdirSync(path.join(cacheDir, "chrome"));
  } catch {
    return null;
  }
  const newestFirst = builds.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  for (const build of newestFirst) {
    const candidate = path.join(cacheDir, "chrome", build, "chrome-linux64", "chrome");
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}
