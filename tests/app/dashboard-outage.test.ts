import { randomUUID } from "node:crypto";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { findChromium } from "../../src/lib/browser/find-chromium";
import { signUpInBrowser } from "../helpers/browser-sign-up";
import { EmulatedPhone } from "../helpers/emulated-phone";
import { setArchiveMaxSize } from "../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../helpers/wavault-instance";

const WAIT = { timeout: 30_000 };

// The dashboard when things go wrong: a session that cannot be saved, a password
// PocketBase cannot take, keyboard use, and PocketBase going away under a running session.
describe("the dashboard in a real browser, when things go wrong", () => {
  let instance: WavaultInstance;
  let browser: Browser;
  const url = (route: string) => `${instance.server.url}${route}`;

  beforeAll(async () => {
    instance = await startWavaultInstance({ INSTANCE_ID: "dashboard-outage" });
    browser = await chromium.launch({ executablePath: findChromium()!.path, chromiumSandbox: false });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await instance?.stop();
  });

  // (First: the next test stops PocketBase.)
  it("says when the session cannot be saved: on the stored-session card and in the history", async () => {
    const admin = await instance.pocketbase.admin();
    // An archive limit below what any profile archives to, as one that has grown past it would meet.
    await setArchiveMaxSize(admin, 1024);

    const { page, userId } = await signUpInBrowser(await browser.newContext(), instance.server.url, admin, "unsaved");
    const status = page.getByTestId("status");
    await expect.poll(() => status.textContent(), WAIT).toBe("Not connected");
    expect(await page.getByTestId("archive-error").count()).toBe(0);

    await page.getByRole("button", { name: "Connect" }).click();
    await expect.poll(() => status.textContent(), WAIT).toBe("Scan the QR code");
    const phone = await EmulatedPhone.attach(instance.profileDir(userId));
    try {
      await phone.pair();
      await expect.poll(() => status.textContent(), WAIT).toBe("Ready");
    } finally {
      await phone.detach();
    }
    const notice = page.getByTestId("archive-error");
    await notice.waitFor(WAIT);
    expect(await notice.textContent()).toMatch(/could not be saved since .+: it has grown larger than the storage limit .+\. Nothing is stored yet; while WhatsApp runs, saving is tried again\./);
    await page.getByTestId("events").getByText("Your session could not be saved: it has grown larger than the storage limit", { exact: false }).waitFor(WAIT);

    // The next test counts on an empty instance.
    await page.getByRole("button", { name: "Disconnect" }).click();
    await expect.poll(() => status.textContent(), WAIT).toBe("Not connected");
    const health = (await (await fetch(url("/api/health/whatsapp"))).json()) as { connections: { active: number } };
    expect(health.connections.active).toBe(0);
  });

  it("says what is wrong, keeps keyboard focus, and never claims a disconnect that PocketBase could not record", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url("/signup"));
    await page.getByLabel("Email").fill(`outage-${randomUUID()}@wavault.test`);
    // 40 characters, but 120 bytes: more than bcrypt (and so PocketBase) takes.
    await page.getByLabel("Password").fill("€".repeat(40));
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Use at most 72 characters", { exact: false }).waitFor(WAIT);
    await page.getByLabel("Password").fill(`pw-${randomUUID()}`);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/dashboard", WAIT);

    // Connect by keyboard: the button pressed gives way to others, and focus stays in the panel.
    const status = page.getByTestId("status");
    await expect.poll(() => status.textContent(), WAIT).toBe("Not connected");
    await page.getByRole("button", { name: "Connect" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Disconnect" }).waitFor(WAIT);
    // Once the connect has answered (a poll may show Disconnect before it does).
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName), WAIT).toMatch(/^(BUTTON|H2)$/);
    await expect.poll(() => status.textContent(), WAIT).toBe("Scan the QR code");
    // A QR nobody scanned has no linked device to log out of.
    expect(await page.getByRole("button", { name: "Log out of WhatsApp" }).count()).toBe(0);

    await instance.pocketbase.stop();
    await expect.poll(() => page.getByTestId("status-detail").textContent(), WAIT).toContain("Last known status");
    await page.getByRole("button", { name: "Disconnect" }).click();
    await page.getByText("Disconnect did not go through.", { exact: false }).waitFor(WAIT);
    const health = (await (await fetch(url("/api/health/whatsapp"))).json()) as { connections: { active: number } };
    expect(health.connections.active).toBe(1); // the client was left running: nothing was stopped

    // A fresh load while PocketBase is down: no status to act on, so no action is offered.
    await page.reload();
    await expect.poll(() => status.textContent(), WAIT).toBe("Unknown");
    expect(await page.getByRole("button", { name: "Connect" }).count()).toBe(0);
    // Signing out needs no PocketBase.
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForURL("**/login", WAIT);
  });
});
