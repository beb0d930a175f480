import { describe, expect, it } from "vitest";

import type { SessionStatus } from "../../../../src/lib/messaging/database-session-store";
import { createTestUser } from "../../../helpers/pocketbase";
import { emulatorDeployments, waitForStatus } from "../../../helpers/whatsapp-runtime";

describe("WhatsAppChannel while the phone scans a rotating QR", () => {
  const deployments = emulatorDeployments("wavault-qr-");

  it("never goes back to qr_ready once the phone has scanned, and issues one QR event per wait", async () => {
    const { manager, events } = deployments.deploy("qr");
    for (let attempt = 0; attempt < 5; attempt++) {
      const user = await createTestUser(deployments.admin);
      const channel = await manager.connect(user.record.id);
      const seen: SessionStatus[] = [];
      channel.on("status", (status: SessionStatus) => seen.push(status));
      await waitForStatus(channel, "qr_ready");
      // The QR rotates just as the phone scans: its change arrives right before the link.
      await channel.client!.pupPage!.evaluate(() =>
        (window as unknown as { __waEmulator: { pair(options: object): Promise<unknown> } }).__waEmulator.pair({ lateQr: true }),
      );
      await waitForStatus(channel, "ready");
      expect(seen.slice(seen.indexOf("authenticating")), seen.join(" → ")).not.toContain("qr_ready");
      expect(channel.qr).toBeNull();
      await manager.disconnect(user.record.id);
      await events.flushed(user.record.id);
      const issued = (await events.list(user.record.id, 100)).filter((event) => event.event === "qr_issued");
      expect(issued).toHaveLength(1);
    }
  });
});
