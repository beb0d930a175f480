"use client";
import { useState, type FormEvent } from "react";

import { callApi } from "./call-api";

/** A small form to send a test message through the user's own WhatsApp. */
export function SendMessageForm() {
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [pending, setPending] = useState(false);

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setPending(true);
    const answer = await callApi<{ id: string }>("POST", "/api/whatsapp/messages", { to: form.get("to"), text: form.get("text") });
    setPending(false);
    if (answer.ok) setResult({ ok: true, text: "Message sent." });
    else setResult({ ok: false, text: answer.fields ? Object.entries(answer.fields).map(([field, problems]) => `${field}: ${problems.join(", ")}`).join("; ") : answer.message });
  }

  return (
    <form onSubmit={send} className="card stack" aria-labelledby="send-title">
      <h2 id="send-title">Send a test message</h2>
      <div className="field">
        <label htmlFor="send-to">To (phone number in international format)</label>
        <input id="send-to" name="to" type="tel" inputMode="tel" placeholder="+49 151 23456789" autoComplete="off" required />
      </div>
      <div className="field">
        <label htmlFor="send-text">Message</label>
        <textarea id="send-text" name="text" rows={3} maxLength={4096} required defaultValue="Hello from wavault!" />
      </div>
      <button type="submit" className="button button-primary" disabled={pending}>
        {pending ? "Sending…" : "Send"}
      </button>
      {result && (
        <p role="status" className={result.ok ? "notice notice-ok" : "notice notice-error"}>
          {result.text}
        </p>
      )}
    </form>
  );
}
