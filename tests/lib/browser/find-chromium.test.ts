import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ChromePathInvalidError, findChromium } from "../../../src/lib/browser/find-chromium";

async function fakeExecutable(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, "#!/bin/sh\n");
  await chmod(file, 0o755);
  return file;
}

describe("findChromium", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-chromium-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prefers CHROME_PATH over everything else", async () => {
    const chrome = await fakeExecutable(path.join(dir, "my-chrome"));
    const system = await fakeExecutable(path.join(dir, "bin", "chromium"));
    expect(findChromium({ chromePath: chrome, searchPath: path.dirname(system) })).toEqual({
      path: chrome,
      source: "CHROME_PATH",
    });
  });

  it("refuses a CHROME_PATH that is not an executable file", async () => {
    const notExecutable = path.join(dir, "chrome.txt");
    await writeFile(notExecutable, "");
    expect(() => findChromium({ chromePath: notExecutable })).toThrow(ChromePathInvalidError);
    expect(() => findChromium({ chromePath: path.join(dir, "missing") })).toThrow(/CHROME_PATH/);
  });

  it("finds a system chromium before a chrome", async () => {
    await fakeExecutable(path.join(dir, "bin", "google-chrome"));
    const chromium = await fakeExecutable(path.join(dir, "bin", "chromium"));
    expect(findChromium({ searchPath: path.join(dir, "bin") })).toEqual({ path: chromium, source: "system" });
  });

  it("falls back to the newest browser in puppeteer's cache", async () => {
    const cache = path.join(dir, "puppeteer");
    await fakeExecutable(path.join(cache, "chrome", "linux-99.0.1", "chrome-linux64", "chrome"));
    const newest = await fakeExecutable(path.join(cache, "chrome", "linux-131.0.2", "chrome-linux64", "chrome"));
    expect(findChromium({ searchPath: path.join(dir, "empty"), puppeteerCacheDir: cache })).toEqual({
      path: newest,
      source: "puppeteer-cache",
    });
  });

  it("returns null when there is no browser at all", () => {
    expect(findChromium({ searchPath: path.join(dir, "empty"), puppeteerCacheDir: path.join(dir, "none") })).toBeNull();
  });

  it("finds this machine's Chromium with the default search", () => {
    // CI installs Debian's chromium before the tests (npm run setup).
    expect(findChromium()?.path).toMatch(/chrom/);
  });
});
