import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

import type { SessionStatus } from "../../../../src/lib/messaging/database-session-store";
import { createTestUser } from "../../../helpers/pocketbase";
import { connectPaired, emulatorDeployments } from "../../../helpers/whatsapp-runtime";

describe("WhatsAppChannel.logout while the channel is already ending", () => {
  const deployments = emulatorDeployments("wavault-logout-");

  it("deletes the profile before the channel closes, so a new client of the user's never has it deleted from under it", async () => {
    const { manager, store } = deployments.deploy("logout");
    const user = await createTestUser(deployments.admin);
    const channel = await connectPaired(manager, user.record.id);

    // The browser dies; the user's logout comes while the channel records its end.
    let loggingOut: Promise<boolean> | undefined;
    channel.on("status", (status: SessionStatus) => {
      if (status === "disconnected") loggingOut ??= channel.logout();
    });
    const profileAtClose = new Promise<boolean>((resolve) => channel.once("closed", () => resolve(existsSync(channel.sessionDir))));
    process.kill(channel.browserPid!, "SIGKILL");

    expect(await profileAtClose).toBe(false);
    expect(await loggingOut).toBe(true);
    expect(await store.hasSession(user.record.id)).toBe(false);
  });
});
