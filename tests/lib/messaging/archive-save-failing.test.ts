import { randomBytes } from "node:crypto";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";
import { emulatorDeployments, phone, waitForStatus } from "../../helpers/whatsapp-runtime";

describe("a running session whose archive PocketBase would not store", () => {
  const deployments = emulatorDeployments("wavault-save-failing-");

  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  beforeAll(async () => {
    // A PocketBase of its own whose archive field stores at most 1 KB: the emulator's
    // profile archives to more, as a grown profile would. (Not changed through the API: a
    // collection change there writes a migration into the project's pb_migrations.)
    pocketbase = await startIsolatedPocketBase({ SESSION_ARCHIVE_MAX_BYTES: "1024" });
    admin = await pocketbase.admin();
  });
  afterAll(async () => {
    await pocketbase?.dispose();
  });

  it("never uploads it, says so once in the history, in the status, in health and in the disconnect's answer", async () => {
    const user = await createTestUser(admin);
    const userId = user.record.id;
    const { manager, store, events, runtime } = deployments.deploy("small-limit", { admin });
    const channel = await manager.connect(userId);
    await waitForStatus(channel, "qr_ready");
    await phone(channel, "pair");
    await waitForStatus(channel, "ready");
    await expect.poll(() => channel.archiveFailure?.code, { timeout: 30_000 }).toBe("archive_over_store_limit");

    // Tried again (the interval's save): still failing, still one event.
    expect(await channel.archiveSessionToDatabase("interval")).toBeNull();
    expect(store.counters.uploads).toBe(0);
    await channel.statusRecorded();
    await expect
      .poll(async () => (await events.list(userId, 50)).filter((event) => event.event === "archive_failed").map((event) => event.data), { timeout: 30_000 })
      .toEqual([{ code: "archive_over_store_limit", reason: "ready" }]);

    const service = new UserSessionService(runtime);
    const status = await service.status(userId);
    expect(status).toMatchObject({ status: "ready", archive: null, archiveError: { code: "archive_over_store_limit" } });
    expect(Date.parse(status.archiveError!.since)).toBeLessThanOrEqual(Date.now());
    const env = parseEnv({
      POCKETBASE_URL: pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    });
    expect((await getWhatsAppHealth(env, runtime)).archiveFailing).toBe(1);

    // The final archive of the stop fails too: the answer says the stored session lags behind.
    const stopped = await service.disconnect(userId);
    expect(stopped).toMatchObject({ status: "disconnected", archive: null, archiveError: { code: "archive_over_store_limit" } });
    expect(store.counters.uploads).toBe(0);
    expect((await getWhatsAppHealth(env, runtime)).archiveFailing).toBe(0);
  });
});
