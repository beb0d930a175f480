import { randomBytes, randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PROJECT_ROOT } from "../../scripts/lib/load-env";
import { findChromium } from "../../src/lib/browser/find-chromium";
import { SessionLease } from "../../src/lib/messaging/session-lease";
import { signUpInBrowser } from "../helpers/browser-sign-up";
import { EmulatedPhone } from "../helpers/emulated-phone";
import { createTestUser } from "../helpers/pocketbase";
import { startWavaultInstance, type WavaultInstance } from "../helpers/wavault-instance";

const SCREENSHOTS = path.join(PROJECT_ROOT, "tests", ".artifacts", "screenshots");
const AXE = path.join(PROJECT_ROOT, "node_modules", "axe-core", "axe.min.js");

/** axe-core's WCAG checks (labels, names, contrast, landmarks, …) on the page as it is: no violations. */
async function expectAccessible(page: Page, state: string): Promise<void> {
  // Next streams a dynamic page's metadata: under load its <title> lands after the page is usable.
  await page.waitForFunction(() => document.title !== "", undefined, { timeout: 30_000 });
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const { violations } = await axe.run(document);
    return violations.map((violation) => ({ id: violation.id, impact: violation.impact, help: violation.help, where: violation.nodes.map((node) => node.target.join(" ")) }));
  });
  expect(violations, state).toEqual([]);
}
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 30_000 };

describe("the dashboard in a real browser", () => {
  let instance: WavaultInstance;
  let admin: PocketBase;
  let browser: Browser;
  const statusToken = randomBytes(24).toString("hex");
  const url = (route: string) => `${instance.server.url}${route}`;
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const status = (page: Page) => page.getByTestId("status");

  const signUp = (context: BrowserContext) => signUpInBrowser(context, instance.server.url, admin);

  beforeAll(async () => {
    await mkdir(SCREENSHOTS, { recursive: true });
    // Requests without the header (the browser's own) have no known address, as before it was set.
    instance = await startWavaultInstance({ MAX_WHATSAPP_CONNECTIONS: "1", STATUS_TOKEN: statusToken, INSTANCE_ID: "dashboard-test", CLIENT_ADDRESS_HEADER: "x-real-ip" });
    admin = await instance.pocketbase.admin();
    browser = await chromium.launch({ executablePath: findChromium()!.path, chromiumSandbox: false });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await instance?.stop();
  });

  it("keeps the token in a __Host- cookie on a host that is not loopback, ignores a planted bare one, and signs out", async () => {
    // *.localhost reaches this machine and Chromium counts it as secure, but it is not
    // one of the loopback names the app relaxes the cookie for: it stands in for a real host.
    const site = url("").replace("127.0.0.1", "wavault.localhost");
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site}/signup`);
    await page.getByLabel("Email").fill(`host-${randomUUID()}@wavault.test`);
    await page.getByLabel("Password").fill(`pw-${randomUUID()}`);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/dashboard", WAIT);
    const cookies = await context.cookies();
    expect(cookies.map((cookie) => cookie.name)).toEqual(["__Host-wavault_token"]);
    expect(cookies[0]).toMatchObject({ domain: "wavault.localhost", path: "/", secure: true, httpOnly: true, sameSite: "Lax" });

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForURL("**/login", WAIT);
    expect(await context.cookies()).toEqual([]);
    // Someone else's valid token, planted under the bare name (as a parent domain could): not a sign-in.
    const planter = await createTestUser(admin);
    await context.addCookies([{ name: "wavault_token", value: planter.token, domain: "wavault.localhost", path: "/" }]);
    await page.goto(`${site}/dashboard`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await context.close();
  });

  it("signs out everywhere: other browsers and API tokens stop working, a dismissed confirmation changes nothing", async () => {
    const user = await createTestUser(admin); // user.token stands for an API client's token
    const apiStatus = async () =>
      (await fetch(url("/api/whatsapp/status"), { headers: { authorization: `Bearer ${user.token}` } })).status;
    const signIn = async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url("/login"));
      await page.getByLabel("Email").fill(user.email);
      await page.getByLabel("Password").fill(user.password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL("**/dashboard", WAIT);
      return { context, page };
    };
    const here = await signIn();
    const elsewhere = await signIn();
    expect(await apiStatus()).toBe(200);
    const button = here.page.getByRole("button", { name: "Sign out everywhere" });

    const posts: string[] = [];
    here.page.on("request", (request) => request.method() === "POST" && posts.push(request.url()));
    here.page.once("dialog", (dialog) => void dialog.dismiss());
    await button.click();
    await here.page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0))); // the submit's task has run
    expect(posts).toEqual([]);
    expect(await apiStatus()).toBe(200);

    here.page.once("dialog", (dialog) => void dialog.accept());
    await button.click();
    await here.page.waitForURL("**/login", WAIT);
    expect(await here.context.cookies()).toEqual([]);
    expect(await apiStatus()).toBe(401);
    await elsewhere.page.goto(url("/dashboard"));
    expect(new URL(elsewhere.page.url()).pathname).toBe("/login");
    // The password still signs in.
    const again = await signIn();
    await expectAccessible(again.page, "dashboard with sign-out-everywhere");
    for (const session of [here, elsewhere, again]) await session.context.close();
  });

  it("stops trying an account's password after 10 failed sign-ins, even the right one", async () => {
    const user = await createTestUser(admin);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url("/login"));
    const attempt = async (password: string) => {
      await page.getByLabel("Email").fill(user.email);
      await page.getByLabel("Password").fill(password);
      const answered = page.waitForResponse((response) => response.request().method() === "POST");
      await page.getByRole("button", { name: "Sign in" }).click();
      await answered;
      // React resets the form once the action's answer is in: only then is it ready for the next try.
      await expect.poll(() => page.getByLabel("Password").inputValue(), WAIT).toBe("");
    };
    const alert = page.locator("p[role=alert]");
    for (let i = 0; i < 10; i++) await attempt(`wrong-${i}-password`);
    await alert.filter({ hasText: "do not match an account" }).waitFor(WAIT);
    await attempt(user.password);
    await alert.filter({ hasText: /Too many failed sign-ins; try again in 15 min/ }).waitFor(WAIT);
    expect(new URL(page.url()).pathname).toBe("/login");
    await context.close();
  });

  it("with CLIENT_ADDRESS_HEADER, locks out the address that failed 10 times, not the account's owner elsewhere", async () => {
    const user = await createTestUser(admin);
    /** Signs in from `address` (the header the proxy would set); the page it ends on. */
    const signInFrom = async (address: string, password: string) => {
      const context = await browser.newContext({ extraHTTPHeaders: { "x-real-ip": address } });
      const page = await context.newPage();
      await page.goto(url("/login"));
      await page.getByLabel("Email").fill(user.email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Sign in" }).click();
      const alert = page.locator("p[role=alert]");
      await Promise.race([page.waitForURL("**/dashboard", WAIT), alert.first().waitFor(WAIT)]);
      const outcome = { pathname: new URL(page.url()).pathname, alert: (await alert.allInnerTexts()).join(" ") };
      await context.close();
      return outcome;
    };
    for (let i = 0; i < 10; i++) expect((await signInFrom("203.0.113.7", `wrong-${i}-password`)).alert).toMatch(/do not match an account/);
    expect((await signInFrom("203.0.113.7", user.password)).alert).toMatch(/Too many failed sign-ins/);
    expect((await signInFrom("198.51.100.9", user.password)).pathname).toBe("/dashboard");
  });

  it("takes a user from sign-up to a QR, to Ready without a reload, to a sent message and a stored session", async () => {
    const context = await browser.newContext({ viewport: PHONE });
    const first = await context.newPage();
    await first.goto(url("/dashboard"));
    expect(new URL(first.url()).pathname).toBe("/login"); // no session: to the login page
    await first.getByRole("link", { name: "Create an account" }).click();
    await first.waitForURL("**/signup");
    await expectAccessible(first, "sign-up page");
    await first.close();

    const { page, userId } = await signUp(context);
    await expect.poll(() => status(page).textContent(), WAIT).toBe("Not connected");
    await expect(page.getByText("No stored session yet.", { exact: false }).isVisible()).resolves.toBe(true);
    const cookie = (await context.cookies()).find((candidate) => candidate.name === "wavault_token")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax" });
    expect(await page.content()).not.toContain(cookie.value); // the token never reaches the page
    await shot(page, "1-signed-up-phone");
    await expectAccessible(page, "dashboard, not connected");

    let navigations = 0;
    page.on("framenavigated", (frame) => frame === page.mainFrame() && (navigations += 1));
    await page.getByRole("button", { name: "Connect" }).click();
    const qr = page.getByRole("img", { name: "WhatsApp QR code to link this service" });
    await qr.waitFor(WAIT);
    expect(await qr.getAttribute("src")).toMatch(/^data:image\/png;base64,/);
    await expect(page.getByText("Linked devices", { exact: false }).isVisible()).resolves.toBe(true);
    await expect.poll(() => status(page).textContent()).toBe("Scan the QR code");
    await shot(page, "2-qr-phone");
    await expectAccessible(page, "dashboard, QR");

    const phone = await EmulatedPhone.attach(instance.profileDir(userId));
    try {
      await phone.pair();
      await expect.poll(() => status(page).textContent(), WAIT).toBe("Ready");
      expect(navigations).toBe(0); // the page followed the status by itself
      await expect(page.getByTestId("phone-number").textContent()).resolves.toMatch(/^\+\d+$/);
      await page.getByTestId("events").getByText("Status: Ready").waitFor(WAIT); // the session's history
      await expect.poll(() => page.getByTestId("keep-running").textContent(), WAIT).toBe("Reconnects by itself, until you disconnect");
      await expect(page.getByTestId("events").getByText("A QR code was shown to link WhatsApp").isVisible()).resolves.toBe(true);
      await shot(page, "3-ready-phone");

      await page.getByLabel("To (phone number in international format)").fill("+49 151 2345-6789");
      await page.getByLabel("Message", { exact: true }).fill("Hello from the dashboard");
      await page.getByRole("button", { name: "Send" }).click();
      await page.getByText("Message sent.").waitFor(WAIT);
      expect(await phone.sentMessages()).toContainEqual(expect.objectContaining({ to: "4915123456789@c.us", body: "Hello from the dashboard" }));
      await shot(page, "4-sent-phone");
      await expectAccessible(page, "dashboard, ready, message sent");
    } finally {
      await phone.detach();
    }

    // A second user, on a desktop: nothing of the first user's session, and a clear
    // message when the instance has no room (its cap is 1 and the first user holds it).
    const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page: second, userId: secondUserId } = await signUp(other);
    await expect.poll(() => status(second).textContent(), WAIT).toBe("Not connected");
    expect(await second.getByTestId("phone-number").count()).toBe(0);
    await expect(second.getByText("No stored session yet.", { exact: false }).isVisible()).resolves.toBe(true);
    await second.getByRole("button", { name: "Connect" }).click();
    await second.getByRole("alert").filter({ hasText: "no room for another WhatsApp connection" }).waitFor(WAIT);
    await shot(second, "5-second-user-connection-limit");
    await expectAccessible(second, "dashboard, an error shown");

    await page.getByRole("button", { name: "Disconnect" }).click();
    await expect.poll(() => status(page).textContent(), WAIT).toBe("Not connected");
    await expect.poll(() => page.getByTestId("archive-size").textContent(), WAIT).toMatch(/^\d+(\.\d)? (B|KB|MB)$/);
    await expect(page.getByTestId("raw-size").textContent()).resolves.toMatch(/^\d+(\.\d)? (B|KB|MB)$/);
    await expect(page.getByText("Yes (AES-256-GCM)").isVisible()).resolves.toBe(true);
    await expect(page.getByTestId("keep-running").textContent()).resolves.toBe("Stays off until you connect"); // the user stopped it
    await shot(page, "6-disconnected-stored-session");
    expect(await second.getByTestId("archive-size").count()).toBe(0); // still nothing of the first user's

    // Logging out of WhatsApp asks first; a "no" changes nothing, a "yes" deletes the session.
    let logoutRequests = 0;
    page.on("request", (request) => request.url().endsWith("/api/whatsapp/logout") && (logoutRequests += 1));
    page.once("dialog", (dialog) => void dialog.dismiss());
    await page.getByRole("button", { name: "Log out of WhatsApp" }).click();
    await page.waitForRequest("**/api/whatsapp/status", WAIT); // the next poll: a logout would have gone out before it
    expect(logoutRequests).toBe(0);
    expect(await page.getByTestId("archive-size").count()).toBe(1);
    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: "Log out of WhatsApp" }).click();
    await page.getByText("No stored session yet.", { exact: false }).waitFor(WAIT);

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForURL("**/login", WAIT);
    await page.goto(url("/dashboard"));
    expect(new URL(page.url()).pathname).toBe("/login");
    await context.close();

    // The session running on another instance, then PocketBase gone: both explained.
    await new SessionLease(admin, { instanceId: "another-instance", ttlMs: 60_000 }).claim(secondUserId);
    await second.getByRole("button", { name: "Connect" }).click();
    await second.getByRole("alert").filter({ hasText: "running on another server instance" }).waitFor(WAIT);
    await shot(second, "7-leased-elsewhere");
    await instance.pocketbase.stop();
    await second.getByRole("alert").filter({ hasText: "PocketBase" }).waitFor(WAIT);
    await shot(second, "8-pocketbase-unreachable");
    await other.close();
  });
});

describe("the operator page", () => {
  let instance: WavaultInstance;
  let browser: Browser;
  const statusToken = randomBytes(24).toString("hex");

  beforeAll(async () => {
    await mkdir(SCREENSHOTS, { recursive: true });
    // It resumes sessions (its PocketBase is its own), so it announces itself to other instances.
    instance = await startWavaultInstance({ STATUS_TOKEN: statusToken, INSTANCE_ID: "status-test", SESSION_RESUME_INTERVAL_MS: "60000" });
    browser = await chromium.launch({ executablePath: findChromium()!.path, chromiumSandbox: false });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await instance?.stop();
  });

  it("opens with the status token or as a superuser, and shows the health numbers", async () => {
    const admin = await instance.pocketbase.admin();
    await expect.poll(async () => (await admin.collection("whatsapp_instances").getFullList()).length, WAIT).toBe(1);
    await admin.collection("whatsapp_instances").create({
      owner: "peer-b/00000000",
      instance_id: "peer-b",
      url: "http://10.0.0.7:3000",
      accepting: false,
      max_connections: 50,
      expires: new Date(Date.now() + 10 * 60_000).toISOString(),
    });
    await admin.collection("whatsapp_instances").create({
      owner: "peer-c/00000000",
      instance_id: "peer-c",
      url: "http://10.0.0.8:3000",
      accepting: true,
      accepting_new_links: false,
      max_connections: 50,
      expires: new Date(Date.now() + 10 * 60_000).toISOString(),
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${instance.server.url}/status`);
    expect(await page.getByText("Active connections").count()).toBe(0);
    await expectAccessible(page, "operator sign-in");
    await page.getByLabel("Status token (STATUS_TOKEN)").fill("not-the-token-at-all");
    await page.getByRole("button", { name: "Open the status page" }).click();
    await page.getByRole("alert").filter({ hasText: "do not open this page" }).waitFor(WAIT);

    await page.getByLabel("Status token (STATUS_TOKEN)").fill(statusToken);
    await page.getByRole("button", { name: "Open the status page" }).click();
    await page.getByRole("heading", { name: "Instance status-test" }).waitFor(WAIT);
    const operatorCookie = (await context.cookies()).find((cookie) => cookie.name === "wavault_operator")!;
    expect(operatorCookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/status" });
    expect(operatorCookie.value).not.toContain(statusToken);
    const facts = await page.getByTestId("status-facts").innerText();
    expect(facts).toMatch(/Active connections\s+0 of 100 \(0%\)/);
    expect(facts).toMatch(/Waiting for a QR scan\s+0 \(at most 50\)/);
    expect(facts).toMatch(/PocketBase reachable\s+Yes/);
    expect(facts).toMatch(/Stored sessions\s+0/);
    expect(facts).toMatch(/Sessions waiting to resume \(all instances\)\s+0/);
    expect(facts).toMatch(/Of those, whose last resumes failed\s+0/);
    expect(facts).toMatch(/Free disk for profiles\s+[\d,]+ MB.* \(at least 1,024 MB wanted\)/);
    const instances = await page.getByTestId("status-instances").innerText();
    expect(instances).toMatch(/status-test \(this one\)\s+–\s+0 of 100\s+Yes\s+\d+ s ago/);
    expect(instances).toMatch(/peer-b\s+http:\/\/10\.0\.0\.7:3000\s+0 of 50\s+No\s+\d+ s ago/);
    expect(instances).toMatch(/peer-c\s+http:\/\/10\.0\.0\.8:3000\s+0 of 50\s+Only linked sessions \(no room for a QR wait\)\s+\d+ s ago/);
    expect(await page.content()).not.toContain(statusToken);
    await page.screenshot({ path: path.join(SCREENSHOTS, "9-operator-status.png"), fullPage: true });
    await expectAccessible(page, "operator status");
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByLabel("Superuser email").fill(instance.pocketbase.adminEmail);
    await page.getByLabel("Superuser password").fill(instance.pocketbase.adminPassword);
    await page.getByRole("button", { name: "Open the status page" }).click();
    await page.getByRole("heading", { name: "Instance status-test" }).waitFor(WAIT);
    await context.close();
  });

  // Runs last: it locks this instance's superuser sign-in for 15 minutes.
  it("stops trying superuser passwords after 10 failures, the status token still opens the page", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${instance.server.url}/status`);
    const submit = async (fill: () => Promise<void>) => {
      await fill();
      const answered = page.waitForResponse((response) => response.request().method() === "POST");
      await page.getByRole("button", { name: "Open the status page" }).click();
      await answered;
      // React resets the form once the action's answer is in: only then is it ready for the next try.
      await expect.poll(() => page.getByLabel("Superuser password").inputValue(), WAIT).toBe("");
    };
    const asSuperuser = (password: string) => async () => {
      await page.getByLabel("Superuser email").fill(instance.pocketbase.adminEmail);
      await page.getByLabel("Superuser password").fill(password);
    };
    for (let i = 0; i < 10; i++) await submit(asSuperuser(`wrong-${i}-password`));
    // A failed try keeps the email typed (only the password goes).
    await expect.poll(() => page.getByLabel("Superuser email").inputValue(), WAIT).toBe(instance.pocketbase.adminEmail);
    await submit(asSuperuser(instance.pocketbase.adminPassword));
    await page.locator("p[role=alert]").filter({ hasText: "Too many failed sign-ins" }).waitFor(WAIT);
    await page.locator("p[role=alert]").filter({ hasText: "The status token still works." }).waitFor(WAIT);
    // Not through `submit`: this one opens the page, so there is no form left to reset.
    await page.getByLabel("Status token (STATUS_TOKEN)").fill(statusToken);
    await page.getByRole("button", { name: "Open the status page" }).click();
    await page.getByRole("heading", { name: "Instance status-test" }).waitFor(WAIT);
    await context.close();
  });
});
