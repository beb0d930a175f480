import nextEnv from "@next/env";
import path from "node:path";

export const PROJECT_ROOT = path.resolve(import.meta.dirname, "../..");

/**
 * Loads the project's `.env*` files into process.env exactly as Next does (variables
 * already in the environment win), so scripts, tests and the app read the same settings.
 */
export function loadProjectEnv(mode: "development" | "production" | "test"): void {
  const dev = mode === "development";
  // @next/env picks .env.test* only when NODE_ENV is "test".
  nextEnv.loadEnvConfig(PROJECT_ROOT, dev, { info: () => {}, error: console.error }, true);
}
