import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { parseEnv } from "../../../src/env";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";

/**
 * The health route before this process has built its WhatsApp runtime (the first call on
 * an instance that resumes nothing, or at boot), against a PocketBase that takes
 * connections and never answers: the runtime's sign-in would wait its 30 s.
 */
describe("getWhatsAppHealth before the runtime is built", () => {
  let hung: Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    hung = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    vi.stubEnv("POCKETBASE_URL", url);
    vi.stubEnv("POCKETBASE_ADMIN_EMAIL", "ops@wavault.test");
    vi.stubEnv("POCKETBASE_ADMIN_PASSWORD", "a-password-1234");
    vi.stubEnv("SESSION_ENCRYPTION_KEY", randomBytes(32).toString("base64"));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => hung.close(resolve));
  });

  it("answers unhealthy within the ping's seconds while PocketBase hangs, not after the sign-in's 30 s", async () => {
    const health = await getWhatsAppHealth(parseEnv(process.env));
    expect(health).toMatchObject({ healthy: false, pocketbase: { reachable: false }, storage: null, connections: { active: 0 } });
  }, 10_000);
});
