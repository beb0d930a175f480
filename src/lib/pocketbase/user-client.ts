import PocketBase, { type RecordModel } from "pocketbase";

import { isPocketBaseError } from "./pocketbase-error";
import { limitRequestTime } from "./request-timeout";

/** A request's token is missing, expired or not a user's. */
export class UnauthorizedError extends Error {
  readonly code = "unauthorized";
  constructor(options?: ErrorOptions) {
    super("A valid user token is required.", options);
    this.name = "UnauthorizedError";
  }
}

/**
 * A PocketBase client that acts as the user who owns `token`, for one request: every
 * call it makes is checked by the collections' API rules, never by superuser rights;
 * each gives up after 30 s (see limitRequestTime).
 */
export function createUserClient(url: string, token: string): PocketBase {
  const pb = limitRequestTime(new PocketBase(url));
  pb.authStore.save(token, null);
  return pb;
}

/**
 * Verifies `token` with PocketBase and returns the user client and the user record.
 * @throws UnauthorizedError when PocketBase does not accept the token as a `users` token;
 *   other failures (PocketBase unreachable) are rethrown as they are.
 */
export async function authenticateUserOrThrow(url: string, token: string): Promise<{ pb: PocketBase; user: RecordModel }> {
  if (!token) throw new UnauthorizedError();
  const pb = createUserClient(url, token);
  try {
    const { record } = await pb.collection("users").authRefresh();
    return { pb, user: record };
  } catch (error) {
    // PocketBase answered "not a valid user token"; anything else (unreachable, 5xx) is not the caller's fault.
    if (isPocketBaseError(error) && [400, 401, 403, 404].includes(error.status)) {
      throw new UnauthorizedError({ cause: error });
    }
    throw error;
  }
}
