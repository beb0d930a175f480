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
});
