import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

import { findChromium, type FoundChromium } from "../../src/lib/browser/find-chromium";

const INSTALL_HINT =
  "Install a Chromium and run again: `sudo apt-get install -y chromium` on Debian/Ubuntu, " +
  "or set CHROME_PATH to a Chrome/Chromium executable.";

export class BrowserUnavailableError extends Error {
  readonly code = "browser_unavailable";
}

/**
 * Returns a Chromium, installing Debian's `chromium` with apt-get when this runs as root
 * on Debian/Ubuntu and finds none.
 * @throws BrowserUnavailableError with the one command that gets a browser.
 */
export function ensureBrowser(chromePath: string | undefined, log: (line: string) => void): FoundChromium {
  const found = findChromium({ chromePath });
  if (found) return found;

  const isRoot = process.getuid?.() === 0;
  const isDebianLike = existsSync("/etc/debian_version");
  if (!isRoot || !isDebianLike) throw new BrowserUnavailableError(`No Chromium found. ${INSTALL_HINT}`);

  log("No Chromium found: installing Debian's chromium with apt-get (one time)…");
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { stdio: "inherit", env });
  } catch (error) {
    throw new BrowserUnavailableError(`apt-get could not install chromium. ${INSTALL_HINT}`, { cause: error });
  }
  const installed = findChromium({ chromePath });
  if (!installed) throw new BrowserUnavailableError(`chromium was installed but not found. ${INSTALL_HINT}`);
  return installed;
}
