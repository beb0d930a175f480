// npm run setup – installs what wavault runs on: the pinned PocketBase and a Chromium.
import { parseToolEnv } from "../src/env";
import { ensureBrowser } from "./lib/ensure-browser";
import { loadProjectEnv } from "./lib/load-env";
import { ensurePocketBaseBinary, POCKETBASE_VERSION } from "./lib/pocketbase-binary";

const log = (line: string) => console.log(`[setup] ${line}`);

try {
  loadProjectEnv("development");
  const env = parseToolEnv(process.env);
  const pocketbase = await ensurePocketBaseBinary({ explicitBin: env.POCKETBASE_BIN, log });
  log(`PocketBase ${POCKETBASE_VERSION}: ${pocketbase}`);
  const browser = ensureBrowser(env.CHROME_PATH, log);
  log(`Chromium: ${browser.path} (${browser.source})`);
} catch (error) {
  console.error(`[setup] ${(error as Error).message}`);
  process.exit(1);
}
