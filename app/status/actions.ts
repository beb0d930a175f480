"use server";
// The operator's sign-in to /status: a status token or a PocketBase superuser.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";

import { getEnv } from "@/env";
import { authCookieOptions, cookieSiteOf, OPERATOR_COOKIE } from "@/lib/auth/auth-cookie";
import { OPERATOR_SESSION_MS, operatorSigningKey, signInOperator } from "@/lib/auth/operator-auth";
import { signInThrottle } from "@/lib/auth/sign-in-throttle";
import { errorCode } from "@/lib/messaging/session-store-errors";
import { serviceSignInHeaders } from "@/lib/pocketbase/service-client";

export interface OperatorFormState {
  error?: string;
  /** The superuser email tried, shown again after a failure. */
  email?: string;
}


export async function signInAsOperator(_state: OperatorFormState, form: FormData): Promise<OperatorFormState> {
  const env = getEnv();
  const input = {
    token: String(form.get("token") ?? "").trim() || undefined,
    email: String(form.get("email") ?? "").trim() || undefined,
    password: String(form.get("password") ?? "") || undefined,
  };
  const failed = (error: string): OperatorFormState => ({ error, email: input.email });
  if (!input.token && !(input.email && input.password)) return failed("Enter the status token, or a superuser's email and password.");
  const options = {
    url: env.POCKETBASE_URL,
    statusToken: env.STATUS_TOKEN,
    signingKey: operatorSigningKey(env.SESSION_ENCRYPTION_KEY),
    headers: input.token ? {} : await serviceSignInHeaders(),
  };
  let value: string;
  try {
    // A superuser's password is throttled for all emails and addresses together (there
    // are few superusers, and guessing them is the prize: no guesser gets more tries
    // from more addresses); the status token stays open.
    value = input.token
      ? await signInOperator(options, input)
      : await signInThrottle().attempt("operator:superuser", null, () => signInOperator(options, input));
  } catch (error) {
    // By code: the throttle on globalThis may come from another bundle's copy of these classes.
    const code = errorCode(error);
    if (code === "too_many_sign_ins") {
      const { message } = error as Error;
      return failed(env.STATUS_TOKEN ? `${message} The status token still works.` : message);
    }
    if (code === "invalid_credentials") return failed("Those credentials do not open this page.");
    return failed("PocketBase is unreachable, so a superuser cannot be checked; use the status token.");
  }
  const cookie = authCookieOptions((await headers()).get("host"), cookieSiteOf(env), OPERATOR_SESSION_MS / 1000);
  (await cookies()).set(OPERATOR_COOKIE, value, { ...cookie, sameSite: "strict", path: "/status" });
  redirect("/status");
}

export async function signOutOperator(): Promise<void> {
  (await cookies()).delete({ name: OPERATOR_COOKIE, path: "/status" });
  redirect("/status");
}
