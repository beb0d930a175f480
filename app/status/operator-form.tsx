"use client";
import { useActionState } from "react";

import { signInAsOperator } from "./actions";

/** Sign-in to the operator page: the status token, or a PocketBase superuser. */
export function OperatorForm() {
  const [state, submit, pending] = useActionState(signInAsOperator, {});
  return (
    <form action={submit} className="card stack">
      {state.error && (
        <p role="alert" className="notice notice-error">
          {state.error}
        </p>
      )}
      <label className="field">
        <span>Status token (STATUS_TOKEN)</span>
        <input name="token" type="password" autoComplete="off" />
      </label>
      <p className="muted">or, as a PocketBase superuser:</p>
      <label className="field">
        <span>Superuser email</span>
        <input name="email" type="email" autoComplete="username" defaultValue={state.email} key={state.email} />
      </label>
      <label className="field">
        <span>Superuser password</span>
        <input name="password" type="password" autoComplete="current-password" />
      </label>
      <button type="submit" className="button button-primary" disabled={pending}>
        {pending ? "Checking…" : "Open the status page"}
      </button>
    </form>
  );
}
