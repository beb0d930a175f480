// npm run pocketbase:install – finds or builds the pinned PocketBase and prints its path.
import { parseToolEnv } from "../src/env";
import { loadProjectEnv } from "./lib/load-env";
import { ensurePocketBaseBinary } from "./lib/pocketbase-binary";

try {
  loadProjectEnv("development");
  const env = parseToolEnv(process.env);
  const bin = await ensurePocketBaseBinary({ explicitBin: env.POCKETBASE_BIN, log: (line) => console.error(line) });
  console.log(bin);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
