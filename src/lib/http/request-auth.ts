import type { RecordModel } from "pocketbase";

import { getEnv } from "../../env";
import { AUTH_COOKIE } from "../auth/auth-cookie";
import { toStoreError } from "../messaging/session-store-errors";
import { authenticateUserOrThrow, UnauthorizedError } from "../pocketbase/user-client";

/** The user token a request carries: `Authorization: Bearer …`, else the dashboard's cookie. */
export function tokenFromRequest(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1]! : null;
  }
  const cookies = request.headers.get("cookie") ?? "";
  for (const part of cookies.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === AUTH_COOKIE) return decodeURIComponent(value.join("=")) || null;
  }
  return null;
}

/**
 * The signed-in user of a request, verified with PocketBase.
 * @throws UnauthorizedError without a valid user token; PocketBaseUnavailableError when
 *   PocketBase cannot be asked.
 */
export async function authenticateRequestOrThrow(request: Request): Promise<RecordModel> {
  const token = tokenFromRequest(request);
  if (!token) throw new UnauthorizedError();
  try {
    const { user } = await authenticateUserOrThrow(getEnv().POCKETBASE_URL, token);
    return user;
  } catch (error) {
    if (error instanceof UnauthorizedError) throw error;
    throw toStoreError(error, "verify the user token");
  }
}
