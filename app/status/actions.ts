"use server";
// The operator's sign-in to /status: a status token or a PocketBase superuser.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";

import { getEnv } from "@/env";
import { authCookieOptions, OPERATOR_COOKIE } from "@/lib/auth/auth-cookie";
import { signInOperator } from "@/lib/auth/operator-auth";
import { InvalidCredentialsError } from "@/lib/auth/user-accounts";

export interface OperatorFormState {
  error?: string;
}

const OPERATOR_COOKIE_MAX_AGE = 12 * 60 * 60;

export async function signInAsOperator(_state: OperatorFormState, form: FormData): Promise<OperatorFormState> {
  const env = getEnv();
  const input = {
    token: String(form.get("token") ?? "").trim() || undefined,
    email: String(form.get("email") ?? "").trim() || undefined,
    password: String(form.get("password") ?? "") || undefined,
  };
  if (!input.token && !(input.email && input.password)) return { error: "Enter the status token, or a superuser's email and password." };
  let value: string;
  try {
    value = await signInOperator(env.POCKETBASE_URL, env.STATUS_TOKEN, input);
  } catch (error) {
    if (error instanceof InvalidCredentialsError) return { error: "Those credentials do not open this page." };
    return { error: "PocketBase is unreachable, so a superuser cannot be checked; use the status token." };
  }
  const options = authCookieOptions((await headers()).get("host"), env.NODE_ENV === "production", OPERATOR_COOKIE_MAX_AGE);
  (await cookies()).set(OPERATOR_COOKIE, value, { ...options, sameSite: "strict", path: "/status" });
  redirect("/status");
}

export async function signOutOperator(): Promise<void> {
  (await cookies()).delete({ name: OPERATOR_COOKIE, path: "/status" });
  redirect("/status");
}
