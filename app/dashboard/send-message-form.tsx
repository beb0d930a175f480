"use client";
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";

import { callApi } from "./call-api";

/** The form's fields by the names the API gives them, in the words the form uses. */
const FIELD_LABEL: Record<string, string> = { to: "To", text: "Message" };

/** A small form to send a test message through the user's own WhatsApp. */
export function SendMessageForm() {
  const router = useRouter();
  const [result, setResult] = useState<{ ok: boolean; text: string; fields?: string[] } | null>(null);
  const [pending, setPending] = useState(false);

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (pending) return; // aria-disabled, not disabled: the button keeps keyboard focus
    const form = new FormData(event.currentTarget);
    setPending(true);
    const answer = await callApi<{ id: string }>("POST", "/api/whatsapp/messages", { to: form.get("to"), text: form.get("text") });
    setPending(false);
    if (answer.ok) setResult({ ok: true, text: "Message sent." });
    else if (answer.status === 401) router.replace("/login");
    else if (answer.fields) {
      const problems = Object.entries(answer.fields).map(([field, messages]) => `${FIELD_LABEL[field] ?? field}: ${messages.join(", ")}`);
      setResult({ ok: false, text: problems.join("; "), fields: Object.keys(answer.fields) });
    } else setResult({ ok: false, text: answer.message });
  }

  const invalid = (field: string) => (result?.fields?.includes(field) ? { "aria-invalid": true, "aria-describedby": "send-result" } : {});

  return (
    <form onSubmit={send} className="card stack" aria-labelledby="send-title">
      <h2 id="send-title">Send a test message</h2>
      <div className="field">
        <label htmlFor="send-to">To (phone number in international format)</label>
        <input id="send-to" name="to" type="tel" inputMode="tel" placeholder="+49 151 23456789" autoComplete="off" required {...invalid("to")} />
      </div>
      <div className="field">
        <label htmlFor="send-text">Message</label>
        <textarea id="send-text" name="text" rows={3} maxLength={4096} required defaultValue="Hello from wavault!" {...invalid("text")} />
      </div>
      <button type="submit" className="button button-primary" aria-disabled={pending}>
        {pending ? "Sending…" : "Send"}
      </button>
      {result && (
        <p id="send-result" role={result.ok ? "status" : "alert"} className={result.ok ? "notice notice-ok" : "notice notice-error"}>
          {result.text}
        </p>
      )}
    </form>
  );
}
