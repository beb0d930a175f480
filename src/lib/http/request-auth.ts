import type { RecordModel } from "pocketbase";

import { getEnv } from "../../env";
import { authCookieName, type CookieSite, cookieSiteOf } from "../auth/auth-cookie";
import { toStoreError } from "../messaging/session-store-errors";
import { verifyUserTokenOrThrow } from "../auth/user-token-verifier";
import { UnauthorizedError } from "../pocketbase/user-client";
import { ApiError } from "./api-error";

/**
 * The user token a request carries, and how: `Authorization: Bearer …`, else the
 * dashboard's cookie, under the one name it has for this host (authCookieName).
 */
export function credentialsFromRequest(
  request: Request,
  site: CookieSite,
): { token: string; via: "header" | "cookie" } | null {
  const header = request.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? { token: match[1]!, via: "header" } : null;
  }
  const cookieName = authCookieName(request.headers.get("host"), site);
  const cookies = request.headers.get("cookie") ?? "";
  for (const part of cookies.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name !== cookieName) continue;
    try {
      const token = decodeURIComponent(value.join("="));
      return token ? { token, via: "cookie" } : null;
    } catch {
      return null; // a malformed escape is no token
    }
  }
  return null;
}

/**
 * Whether a browser sent this request from our own pages. A cookie rides along with
 * any request to us, so a state-changing one must prove where it came from (CSRF):
 * Sec-Fetch-Site, which every current browser sends, else Origin against PUBLIC_URL
 * (when set) or the Host.
 */
export function isSameOrigin(request: Request, publicUrl?: string): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site) return site === "same-origin";
  const origin = request.headers.get("origin");
  if (!origin) return false;
  const host = request.headers.get("x-forwarded-host") ?? request.headers.get("host");
  try {
    return publicUrl ? new URL(origin).origin === new URL(publicUrl).origin : new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * The signed-in user of a request, verified with PocketBase.
 * @throws UnauthorizedError without a valid user token; ApiError forbidden for a
 *   cross-site request that changes something with the cookie; PocketBaseUnavailableError
 *   when PocketBase cannot be asked.
 */
export async function authenticateRequestOrThrow(request: Request): Promise<RecordModel> {
  const env = getEnv();
  const credentials = credentialsFromRequest(request, cookieSiteOf(env));
  if (!credentials) throw new UnauthorizedError();
  if (credentials.via === "cookie" && !["GET", "HEAD"].includes(request.method) && !isSameOrigin(request, env.PUBLIC_URL)) {
    throw new ApiError("forbidden", "Requests that change something must come from this site's own pages.");
  }
  try {
    return await verifyUserTokenOrThrow(env.POCKETBASE_URL, credentials.token);
  } catch (error) {
    if (error instanceof UnauthorizedError) throw error;
    throw toStoreError(error, "verify the user token");
  }
}
