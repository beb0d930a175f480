import { execFileSync, spawn } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { MIGRATIONS_DIR, startThrowawayPocketBase } from "../../scripts/lib/pocketbase-server";
import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { setArchiveMaxSize, testPocketBase } from "../helpers/pocketbase";

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

  it("writes no migration when a collection is changed through the API or the dashboard (the archive limit, say)", async () => {
    const server = await startThrowawayPocketBase(testPocketBase().bin);
    const before = await readdir(MIGRATIONS_DIR);
    try {
      const admin = await server.admin();
      await setArchiveMaxSize(admin, 2048);
      const archive = (await admin.collections.getOne("whatsapp_sessions")).fields.find((field) => field.name === "archive");
      expect(archive?.maxSize).toBe(2048); // changed in the database…
      expect(await readdir(MIGRATIONS_DIR)).toEqual(before); // …and nowhere else
    } finally {
      // Were one written, the rest of the run must not apply it.
      for (const name of await readdir(MIGRATIONS_DIR)) if (!before.includes(name)) await rm(path.join(MIGRATIONS_DIR, name));
      await server.dispose();
    }
  });

  /** The PocketBase servers the fixture started (their data dirs are the fixture's, by name). */
  const fixturePocketBases = () =>
    execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.includes("wavault-pb-group-"))
      .map((line) => Number(line.trim().split(/\s+/)[0]));

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
    try {
      process.kill(-child.pid!, "SIGINT");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      return output;
    } finally {
      // Whatever happened, nothing of it outlives the test: the fixture's group, and its PocketBase's own.
      for (const target of [-child.pid!, ...fixturePocketBases()]) {
        try {
          process.kill(target, "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
  };

  it("outlives a Ctrl-C to the terminal's job when in a group of its own, so the app can still save its sessions", async () => {
    expect(await afterCtrlC("own")).toMatch(/^alive$/m);
    expect(await afterCtrlC("shared")).toMatch(/^gone$/m); // as it was: stopped with the app's saves still to come
  }, 60_000);
});
