import { randomUUID } from "node:crypto";
import type { BrowserContext, Page } from "playwright-core";
import type PocketBase from "pocketbase";

/**
 * Signs a new user up on the dashboard at `serverUrl` in a new page of `context`, as a
 * person would; resolves on the dashboard with the page, the email and the user's id.
 */
export async function signUpInBrowser(
  context: BrowserContext,
  serverUrl: string,
  admin: PocketBase,
  emailPrefix = "dash",
): Promise<{ page: Page; email: string; userId: string }> {
  const page = await context.newPage();
  const email = `${emailPrefix}-${randomUUID()}@wavault.test`;
  await page.goto(`${serverUrl}/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(`pw-${randomUUID()}`);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL("**/dashboard", { timeout: 30_000 });
  const user = await admin.collection("users").getFirstListItem(admin.filter("email = {:email}", { email }));
  return { page, email, userId: user.id };
}
