import { createServer, request as forward, type Server } from "node:http";
import { chromium } from "playwright-core";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { findFreePort } from "../../scripts/lib/pocketbase-server";
import { findChromium } from "../../src/lib/browser/find-chromium";
import { createTestUser, type TestUser } from "../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../helpers/wavault-instance";

/** A reverse proxy as nginx is by default: it sends the upstream's own address as Host. */
async function startHostRewritingProxy(port: number, upstream: URL): Promise<Server> {
  const proxy = createServer((incoming, outgoing) => {
    const headers = { ...incoming.headers, host: upstream.host };
    const request = forward({ host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    request.on("error", () => outgoing.destroy());
    incoming.pipe(request);
  });
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
  return proxy;
}

// Users reach wavault at the proxy's address; Next sees only its own loopback Host.
describe("sign-in behind a proxy that does not forward Host, with PUBLIC_URL", () => {
  let instance: WavaultInstance;
  let proxy: Server;
  let publicUrl: string;
  let admin: PocketBase;
  let user: TestUser;

  beforeAll(async () => {
    const port = await findFreePort();
    publicUrl = `http://localhost:${port}`;
    instance = await startWavaultInstance({ INSTANCE_ID: "behind-proxy", PUBLIC_URL: publicUrl });
    proxy = await startHostRewritingProxy(port, new URL(instance.server.url));
    admin = await instance.pocketbase.admin();
    user = await createTestUser(admin);
  }, 180_000);

  afterAll(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    await instance?.stop();
  });

  it("signs in at the public address and reaches the dashboard", async () => {
    const browser = await chromium.launch({ executablePath: findChromium()!.path, chromiumSandbox: false });
    try {
      const page = await browser.newPage();
      await page.goto(`${publicUrl}/login`);
      await page.getByLabel("Email").fill(user.email);
      await page.getByLabel("Password").fill(user.password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL("**/dashboard", { timeout: 30_000 });
      await page.getByText(user.email).waitFor({ timeout: 30_000 });
      expect(instance.server.output()).not.toContain("Invalid Server Actions request");
    } finally {
      await browser.close();
    }
  });
});
