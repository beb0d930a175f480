import PocketBase from "pocketbase";

import { toStoreError } from "../messaging/session-store-errors";
import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { limitRequestTime } from "../pocketbase/request-timeout";
import { forgetVerifiedTokens } from "./user-token-verifier";

/** The email and password do not match a user. */
export class InvalidCredentialsError extends Error {
  readonly code = "invalid_credentials";
  constructor() {
    super("That email and password do not match an account.");
    this.name = "InvalidCredentialsError";
  }
}

/** The password matched, but the users collection's auth rule (an operator's: verified accounts only, say) refuses the account. */
export class SignInRefusedError extends Error {
  readonly code = "sign_in_refused";
  constructor() {
    super("This account may not sign in now; ask the service's operator.");
    this.name = "SignInRefusedError";
  }
}

/** PocketBase refused a new account; `fields` says why, per field. */
export class SignupRejectedError extends Error {
  readonly code = "signup_rejected";
  constructor(readonly fields: Record<string, string>) {
    super("The account could not be created.");
    this.name = "SignupRejectedError";
  }
}

/** The minimum PocketBase's users collection accepts by default. */
export const MIN_PASSWORD_LENGTH = 8;
/** The most PocketBase takes: bcrypt reads 72 bytes of a password, counted in UTF-8. */
export const MAX_PASSWORD_BYTES = 72;

/**
 * Signs a user in with email and password; returns their PocketBase token. `headers`:
 * serviceSignInHeaders() for the dashboard's sign-ins. A superuser's sign-in for a user
 * skips the users collection's auth rule (PocketBase lets superusers at any record), so
 * the new token is then checked as the user's own: a rule an operator set (verified
 * accounts only, say) holds on /login as on PocketBase's API.
 * @throws InvalidCredentialsError, SignInRefusedError, PocketBaseUnavailableError, SessionStoreError
 */
export async function signInUser(url: string, email: string, password: string, headers: Record<string, string> = {}): Promise<string> {
  const pb = limitRequestTime(new PocketBase(url));
  try {
    await pb.collection("users").authWithPassword(email, password, { headers });
    if (headers.Authorization) await pb.collection("users").authRefresh();
    return pb.authStore.token;
  } catch (error) {
    if (isPocketBaseError(error, 400)) throw new InvalidCredentialsError();
    if (isPocketBaseError(error, 403)) throw new SignInRefusedError();
    throw toStoreError(error, "sign in");
  }
}

/**
 * Creates an account (PocketBase's users collection allows public sign-up) and signs
 * it in (with `headers`, as signInUser); returns its token.
 * @throws SignupRejectedError (an email taken or invalid, a weak password), PocketBaseUnavailableError
 */
export async function signUpUser(url: string, email: string, password: string, headers: Record<string, string> = {}): Promise<string> {
  const pb = limitRequestTime(new PocketBase(url));
  try {
    await pb.collection("users").create({ email, password, passwordConfirm: password, emailVisibility: false });
  } catch (error) {
    if (isPocketBaseError(error, 400)) {
      const data = (error.response?.data ?? {}) as Record<string, { message?: string; code?: string }>;
      const fields = Object.fromEntries(
        Object.entries(data).map(([field, problem]) => [field, describeProblem(field, problem)]),
      );
      throw new SignupRejectedError(fields); // no field named: the form says so as a whole
    }
    throw toStoreError(error, "sign up");
  }
  return signInUser(url, email, password, headers);
}

function describeProblem(field: string, problem: { message?: string; code?: string }): string {
  if (field === "email" && problem.code === "validation_not_unique") return "An account with this email already exists.";
  return problem.message ?? "Invalid value.";
}

/**
 * Signs `userId` out everywhere: PocketBase gives the user a new token key, which
 * invalidates every token issued so far (dashboard cookies on any browser, API bearer
 * tokens), and this process stops trusting the ones it has verified. Other instances
 * trust an already verified token for at most VERIFIED_TOKEN_TTL_MS longer.
 * `service` must be a superuser client: a user cannot change their own token key.
 * @throws PocketBaseUnavailableError, SessionStoreError
 */
export async function revokeUserTokens(service: PocketBase, userId: string): Promise<void> {
  try {
    await service.collection("users").update(userId, { "tokenKey:autogenerate": "" }, { requestKey: null });
  } catch (error) {
    throw toStoreError(error, "revoke the user's tokens");
  } finally {
    forgetVerifiedTokens(userId);
  }
}
