import { createHash, timingSafeEqual } from "node:crypto";
import PocketBase, { ClientResponseError } from "pocketbase";

import { InvalidCredentialsError } from "./user-accounts";
import { toStoreError } from "../messaging/session-store-errors";

const digest = (value: string) => createHash("sha256").update(value).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/**
 * Signs an operator in to /status: with STATUS_TOKEN, or as a PocketBase superuser.
 * Returns the value of the operator cookie.
 * @throws InvalidCredentialsError, PocketBaseUnavailableError
 */
export async function signInOperator(
  url: string,
  statusToken: string | undefined,
  input: { token?: string; email?: string; password?: string },
): Promise<string> {
  if (input.token) {
    if (statusToken && sameSecret(input.token, statusToken)) return `token:${input.token}`;
    throw new InvalidCredentialsError();
  }
  try {
    const { token } = await new PocketBase(url).collection("_superusers").authWithPassword(input.email ?? "", input.password ?? "");
    return `superuser:${token}`;
  } catch (error) {
    if (error instanceof ClientResponseError && error.status === 400) throw new InvalidCredentialsError();
    throw toStoreError(error, "sign in as a superuser");
  }
}

/** Whether an operator cookie still grants /status (a superuser token is checked with PocketBase). */
export async function isOperator(url: string, statusToken: string | undefined, cookie: string | undefined): Promise<boolean> {
  if (!cookie) return false;
  if (cookie.startsWith("token:")) return Boolean(statusToken) && sameSecret(cookie.slice("token:".length), statusToken!);
  if (!cookie.startsWith("superuser:")) return false;
  const pb = new PocketBase(url);
  pb.authStore.save(cookie.slice("superuser:".length), null);
  try {
    await pb.collection("_superusers").authRefresh();
    return true;
  } catch {
    return false;
  }
}
