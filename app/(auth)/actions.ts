"use server";
// Sign-up, sign-in, sign-out and sign-out-everywhere for the dashboard: each checks the
// form, makes one call into src/lib/auth, sets or clears the httpOnly token cookie, and
// redirects.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { z } from "zod";

import { getEnv } from "@/env";
import { authCookieName, authCookieOptions, BARE_COOKIE, cookieSiteOf, tokenLifetimeSeconds } from "@/lib/auth/auth-cookie";
import { signInThrottle } from "@/lib/auth/sign-in-throttle";
import { getCurrentUser } from "@/lib/auth/current-user";
import {
  MAX_PASSWORD_BYTES,
  MIN_PASSWORD_LENGTH,
  revokeUserTokens,
  signInUser,
  type SignupRejectedError,
  signUpUser,
} from "@/lib/auth/user-accounts";
import { clientAddressOf } from "@/lib/http/client-address";
import { errorCode } from "@/lib/messaging/session-store-errors";
import { log } from "@/lib/log";
import { getServiceClient, serviceSignInHeaders } from "@/lib/pocketbase/service-client";

export interface AuthFormState {
  error?: string;
  fields?: Record<string, string>;
  email?: string;
}

const CredentialsSchema = z.object({
  email: z.email({ message: "Enter a valid email address." }),
  password: z
    .string()
    .min(MIN_PASSWORD_LENGTH, { message: `Use at least ${MIN_PASSWORD_LENGTH} characters.` })
    .refine((password) => Buffer.byteLength(password) <= MAX_PASSWORD_BYTES, {
      message: `Use at most ${MAX_PASSWORD_BYTES} characters (accented letters and symbols count as two to four).`,
    }),
});

async function handle(form: FormData, act: (email: string, password: string) => Promise<string>): Promise<AuthFormState> {
  const email = String(form.get("email") ?? "").trim();
  const parsed = CredentialsSchema.safeParse({ email, password: form.get("password") ?? "" });
  if (!parsed.success) {
    const fields = Object.fromEntries(parsed.error.issues.map((issue) => [String(issue.path[0]), issue.message]));
    return { fields, email };
  }
  let token: string;
  try {
    token = await act(parsed.data.email, parsed.data.password);
  } catch (error) {
    // By code: the throttle on globalThis may come from another bundle's copy of these classes.
    const code = errorCode(error);
    if (code === "invalid_credentials" || code === "sign_in_refused" || code === "too_many_sign_ins") return { error: (error as Error).message, email };
    if (code === "signup_rejected") return { error: (error as SignupRejectedError).message, fields: (error as SignupRejectedError).fields, email };
    return { error: "The account service is unreachable right now; try again shortly.", email };
  }
  await setAuthCookie(token, tokenLifetimeSeconds(token));
  redirect("/dashboard");
}

/** Sets the token cookie, or (with "" and maxAge 0) clears it with the same attributes — a `__Host-` cookie is only replaced by one with Secure and `Path=/`. */
async function setAuthCookie(token: string, maxAge?: number): Promise<void> {
  const [host, site, jar] = [(await headers()).get("host"), cookieSiteOf(getEnv()), await cookies()];
  const name = authCookieName(host, site);
  jar.set(name, token, authCookieOptions(host, site, maxAge));
  // A bare-named cookie from before (PUBLIC_URL set since, say) is no longer read, but its
  // token would still ride along over plain http: it goes.
  if (name !== BARE_COOKIE && jar.has(BARE_COOKIE)) jar.delete(BARE_COOKIE);
}

export async function signUp(_state: AuthFormState, form: FormData): Promise<AuthFormState> {
  return handle(form, async (email, password) => signUpUser(getEnv().POCKETBASE_URL, email, password, await serviceSignInHeaders()));
}

export async function signIn(_state: AuthFormState, form: FormData): Promise<AuthFormState> {
  const address = clientAddressOf(await headers(), getEnv().CLIENT_ADDRESS_HEADER);
  return handle(form, (email, password) =>
    signInThrottle().attempt(`user:${email.toLowerCase()}`, address, async () =>
      signInUser(getEnv().POCKETBASE_URL, email, password, await serviceSignInHeaders()),
    ),
  );
}

export async function signOut(): Promise<void> {
  await setAuthCookie("", 0);
  redirect("/login");
}

export interface SignOutEverywhereState {
  error?: string;
}

/** Revokes every token of the signed-in user (other browsers, API clients), then signs this browser out. */
export async function signOutEverywhere(_state: SignOutEverywhereState): Promise<SignOutEverywhereState> {
  const user = await getCurrentUser();
  const unreachable = { error: "The account service is unreachable right now, so your other sign-ins are still active; try again shortly." };
  if (user.state === "pocketbase_unavailable") return unreachable;
  if (user.state === "signed_in") {
    try {
      await revokeUserTokens(await getServiceClient(), user.id);
    } catch (error) {
      log("error", "Could not revoke a user's tokens", { userId: user.id, error: String(error) });
      return unreachable;
    }
  }
  await setAuthCookie("", 0);
  redirect("/login");
}
