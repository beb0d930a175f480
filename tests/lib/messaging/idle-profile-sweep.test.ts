import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { VERSION_MARKER } from "../../../src/lib/messaging/database-session-store";
import { IDLE_PROFILE_MS, sweepIdleProfiles } from "../../../src/lib/messaging/idle-profile-sweep";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { createTestUser } from "../../helpers/pocketbase";
import { connectPaired, emulatorDeployments } from "../../helpers/whatsapp-runtime";

describe("the sweep of idle profiles in SESSION_TMP_DIR", () => {
  const deployments = emulatorDeployments("wavault-idle-profiles-");

  it("deletes week-old profiles the database vouches for, never a running client's nor one never saved", async () => {
    const root = deployments.sessionRoot("sweep");
    const { manager } = deployments.deploy("sweep");
    const running = await createTestUser(deployments.admin);
    const channel = await connectPaired(manager, running.record.id); // saved: its profile has the marker
    const weekAgo = new Date(Date.now() - IDLE_PROFILE_MS - 60_000);
    const age = (profile: string) => utimes(path.join(root, profile, VERSION_MARKER), weekAgo, weekAgo);
    await age(path.basename(channel.sessionDir)); // idle for a week, yet running here

    const profile = async (name: string, marked: "old" | "new" | "none") => {
      await writeFakeProfile(path.join(root, name));
      if (marked === "none") return;
      await writeFile(path.join(root, name, VERSION_MARKER), "sha256");
      if (marked === "old") await age(name);
    };
    await profile("session-idle", "old");
    await profile("session-recent", "new");
    await profile("session-never-saved", "none"); // perhaps a login's only copy
    await mkdir(path.join(root, "not-a-profile"));

    expect(await sweepIdleProfiles(root, manager)).toBe(1);
    expect((await readdir(root)).filter((name) => !name.startsWith("wavault-archive-")).sort()).toEqual(
      [path.basename(channel.sessionDir), "not-a-profile", "session-never-saved", "session-recent"].sort(),
    );
    expect(channel.status).toBe("ready");

    // Once its client has stopped, the running one's profile is idle too.
    await manager.disconnect(running.record.id);
    await age(path.basename(channel.sessionDir));
    expect(await sweepIdleProfiles(root, manager)).toBe(1);
    expect(await readdir(root)).not.toContain(path.basename(channel.sessionDir));
  });
});
