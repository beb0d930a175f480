import "server-only";

import { cookies, headers } from "next/headers";

import { getEnv } from "../../env";
import { UnauthorizedError } from "../pocketbase/user-client";
import { verifyUserTokenOrThrow } from "./user-token-verifier";
import { authCookieName, cookieSiteOf } from "./auth-cookie";

export type CurrentUser =
  | { state: "signed_in"; id: string; email: string }
  | { state: "signed_out" }
  | { state: "pocketbase_unavailable" };

/** Who the page's visitor is, from the dashboard cookie, verified with PocketBase. */
export async function getCurrentUser(): Promise<CurrentUser> {
  // The request's headers and cookies first: reading them makes a page dynamic, so a
  // build never prerenders it (and never needs the configuration).
  const [host, jar] = [(await headers()).get("host"), await cookies()];
  const env = getEnv();
  const token = jar.get(authCookieName(host, cookieSiteOf(env)))?.value;
  if (!token) return { state: "signed_out" };
  try {
    const user = await verifyUserTokenOrThrow(env.POCKETBASE_URL, token);
    return { state: "signed_in", id: user.id, email: String(user.email ?? "") };
  } catch (error) {
    if (error instanceof UnauthorizedError) return { state: "signed_out" };
    return { state: "pocketbase_unavailable" };
  }
}
