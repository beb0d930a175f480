import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

import { startThrowawayPocketBase } from "../../scripts/lib/pocketbase-server";
import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { testPocketBase } from "../helpers/pocketbase";

describe("startPocketBase", () => {
  it("creates a superuser whose password starts with a dash (random passwords do, 1 in 64)", async () => {
    const server = await startThrowawayPocketBase(testPocketBase().bin, { adminPassword: "-hT-starts-with-a-dash" });
    try {
      const pb = await createServiceClient({ url: server.url, email: server.adminEmail, password: server.adminPassword });
      expect(pb.authStore.isSuperuser).toBe(true);
    } finally {
      await server.dispose();
    }
  });

  /** Runs the fixture in a process group of its own (a terminal's job), sends the group a Ctrl-C, and returns what it saw. */
  const afterCtrlC = async (mode: "own" | "shared") => {
    const child = spawn(process.execPath, ["--import", "tsx", "tests/fixtures/pocketbase-own-group.ts", mode, testPocketBase().bin], {
      detached: true,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    while (!/^up$/m.test(output)) {
      if (child.exitCode !== null) throw new Error(`the fixture exited before PocketBase was up:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    process.kill(-child.pid!, "SIGINT");
    await exited;
    return output;
  };

  it("outlives a Ctrl-C to the terminal's job when in a group of its own, so the app can still save its sessions", async () => {
    expect(await afterCtrlC("own")).toMatch(/^alive$/m);
    expect(await afterCtrlC("shared")).toMatch(/^gone$/m); // as it was: stopped with the app's saves still to come
  }, 60_000);
});
