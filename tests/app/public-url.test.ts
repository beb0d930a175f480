import { chromium } from "playwright-core";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { findChromium } from "../../src/lib/browser/find-chromium";
import { createTestUser, type TestUser } from "../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../helpers/wavault-instance";

// Behind a reverse proxy that sends its upstream's loopback Host (nginx's default), the
// dashboard's cookie must stay the Secure __Host- one: PUBLIC_URL says where users are.
describe("PUBLIC_URL on next start, reached with a loopback Host", () => {
  let instance: WavaultInstance;
  let admin: PocketBase;
  let user: TestUser;

  beforeAll(async () => {
    instance = await startWavaultInstance({ INSTANCE_ID: "public-url", PUBLIC_URL: "https://wavault.example.com" });
    admin = await instance.pocketbase.admin();
    user = await createTestUser(admin);
  }, 180_000);

  afterAll(async () => {
    await instance?.stop();
  });

  const get = (path: string, cookie: string) => fetch(`${instance.server.url}${path}`, { headers: { cookie }, redirect: "manual" });

  it("reads the token only from the __Host- cookie, in the API and on the pages", async () => {
    expect((await get("/api/whatsapp/status", `__Host-wavault_token=${user.token}`)).status).toBe(200);
    // The bare name is what anyone who can set cookies for a parent domain could plant.
    expect((await get("/api/whatsapp/status", `wavault_token=${user.token}`)).status).toBe(401);

    expect((await get("/dashboard", `__Host-wavault_token=${user.token}`)).status).toBe(200);
    const signedOut = await get("/dashboard", `wavault_token=${user.token}`);
    expect(signedOut.status).toBeGreaterThanOrEqual(300);
    expect(signedOut.headers.get("location")).toMatch(/\/login/);
  });

  it("forbids every page and answer to be framed by another site, a sibling subdomain included (clickjacking)", async () => {
    for (const path of ["/login", "/signup", "/dashboard", "/status", "/api/health/whatsapp", "/api/whatsapp/status"]) {
      const answer = await get(path, `__Host-wavault_token=${user.token}`);
      expect({ path, csp: answer.headers.get("content-security-policy"), xfo: answer.headers.get("x-frame-options") }).toEqual({
        path,
        csp: expect.stringContaining("frame-ancestors 'none'"),
        xfo: "DENY",
      });
      expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  it("signs in with the __Host- cookie, and the bare one a browser kept from before goes", async () => {
    const browser = await chromium.launch({ executablePath: findChromium()!.path, chromiumSandbox: false });
    try {
      const context = await browser.newContext();
      // Left by the deployment before PUBLIC_URL (its proxy sent a loopback Host).
      await context.addCookies([{ name: "wavault_token", value: "stale-token", url: instance.server.url }]);
      const page = await context.newPage();
      await page.goto(`${instance.server.url}/login`);
      await page.getByLabel("Email").fill(user.email);
      await page.getByLabel("Password").fill(user.password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL("**/dashboard", { timeout: 30_000 });
      const cookies = await context.cookies();
      expect(cookies.find((cookie) => cookie.name === "__Host-wavault_token")).toMatchObject({ secure: true, httpOnly: true, path: "/" });
      expect(cookies.map((cookie) => cookie.name)).not.toContain("wavault_token");
    } finally {
      await browser.close();
    }
  });
});
