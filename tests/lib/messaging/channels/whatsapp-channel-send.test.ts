import { describe, expect, it } from "vitest";

import { SendTimedOutError } from "../../../../src/lib/messaging/channels/channel-errors";
import type { WhatsAppChannel } from "../../../../src/lib/messaging/channels/whatsapp-channel";
import { createTestUser } from "../../../helpers/pocketbase";
import { connectPaired, emulatorDeployments, waitForStatus } from "../../../helpers/whatsapp-runtime";

/** Through the page, as the phone's side of the emulator is driven. */
const emulator = <T>(channel: WhatsAppChannel, call: string): Promise<T> =>
  channel.client!.pupPage!.evaluate(`window.__waEmulator.${call}`) as Promise<T>;

describe("a send WhatsApp Web does not answer", () => {
  const deployments = emulatorDeployments("wavault-send-timeout-");

  it("fails once its time is up (SendTimedOutError, the send going on) instead of holding the request, and the client sends again once WhatsApp Web does", async () => {
    const { manager } = deployments.deploy("send-timeout", { sendTimeoutMs: 1_500 });
    const user = await createTestUser(deployments.admin);
    const channel = await connectPaired(manager, user.record.id);
    await waitForStatus(channel, "ready");

    await emulator(channel, "stallSends(true)");
    const started = Date.now();
    const stalled = await channel.sendText("4915123456789@c.us", "stuck").catch((error: unknown) => error);
    expect(stalled).toBeInstanceOf(SendTimedOutError);
    expect(stalled).toMatchObject({ code: "send_timeout", timeoutMs: 1_500, late: expect.any(Promise) });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(channel.status).toBe("ready");

    await emulator(channel, "stallSends(false)");
    const id = await channel.sendText("4915123456789@c.us", "through");
    expect(await emulator<{ id: string; body: string }[]>(channel, "sentMessages()")).toContainEqual(expect.objectContaining({ id, body: "through" }));
    await manager.stopAll();
  });
});
