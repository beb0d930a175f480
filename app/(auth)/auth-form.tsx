"use client";
import Link from "next/link";
import { useActionState } from "react";

import type { AuthFormState } from "./actions";

interface AuthFormProps {
  mode: "login" | "signup";
  action: (state: AuthFormState, form: FormData) => Promise<AuthFormState>;
}

/** The email + password form of /login and /signup, with errors next to their fields. */
export function AuthForm({ mode, action }: AuthFormProps) {
  const [state, submit, pending] = useActionState(action, {});
  const signup = mode === "signup";
  return (
    <form action={submit} className="card stack" noValidate>
      {state.error && (
        <p role="alert" className="notice notice-error">
          {state.error}
        </p>
      )}
      <label className="field">
        <span>Email</span>
        <input name="email" type="email" autoComplete="email" required defaultValue={state.email} aria-invalid={Boolean(state.fields?.email)} aria-describedby={state.fields?.email ? "email-error" : undefined} />
        {state.fields?.email && <span id="email-error" className="field-error">{state.fields.email}</span>}
      </label>
      <label className="field">
        <span>Password</span>
        <input name="password" type="password" autoComplete={signup ? "new-password" : "current-password"} required minLength={8} aria-invalid={Boolean(state.fields?.password)} aria-describedby={state.fields?.password ? "password-error" : undefined} />
        {state.fields?.password && <span id="password-error" className="field-error">{state.fields.password}</span>}
      </label>
      <button type="submit" className="button button-primary" disabled={pending}>
        {pending ? "Please wait…" : signup ? "Create account" : "Sign in"}
      </button>
      <p className="muted">
        {signup ? (
          <>
            Already have an account? <Link href="/login">Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link href="/signup">Create an account</Link>
          </>
        )}
      </p>
    </form>
  );
}
