import "server-only";

import { cookies } from "next/headers";

import { getEnv } from "../../env";
import { UnauthorizedError } from "../pocketbase/user-client";
import { verifyUserTokenOrThrow } from "./user-token-verifier";
import { AUTH_COOKIE } from "./auth-cookie";

export type CurrentUser =
  | { state: "signed_in"; id: string; email: string }
  | { state: "signed_out" }
  | { state: "pocketbase_unavailable" };

/** Who the page's visitor is, from the dashboard cookie, verified with PocketBase. */
export async function getCurrentUser(): Promise<CurrentUser> {
  const token = (await cookies()).get(AUTH_COOKIE)?.value;
  if (!token) return { state: "signed_out" };
  try {
    const user = await verifyUserTokenOrThrow(getEnv().POCKETBASE_URL, token);
    return { state: "signed_in", id: user.id, email: String(user.email ?? "") };
  } catch (error) {
    if (error instanceof UnauthorizedError) return { state: "signed_out" };
    return { state: "pocketbase_unavailable" };
  }
}
