"use client";
import { useActionState } from "react";

import { signOutEverywhere, type SignOutEverywhereState } from "../(auth)/actions";

const CONFIRM =
  "Sign out everywhere? Every browser and API client signed in to this account must sign in again. Your WhatsApp connection keeps running.";

/** Ends every sign-in of this account (after a confirmation), this one included. */
export function SignOutEverywhere() {
  const [state, action, pending] = useActionState<SignOutEverywhereState, FormData>(signOutEverywhere, {});
  return (
    // A submit the confirmation cancels (defaultPrevented) never reaches the action.
    <form
      action={action}
      onSubmit={(event) => {
        if (!window.confirm(CONFIRM)) event.preventDefault();
      }}
    >
      <button type="submit" className="button" disabled={pending}>
        Sign out everywhere
      </button>
      {state.error && (
        <p role="alert" className="notice notice-error">
          {state.error}
        </p>
      )}
    </form>
  );
}
