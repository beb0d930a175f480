"use client";
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useRef, useState } from "react";

import type { UserSessionView } from "@/lib/messaging/user-session-service";
import { callApi } from "./call-api";
import { RecentEvents } from "./recent-events";
import { SendMessageForm } from "./send-message-form";
import { STATUS_TEXT } from "./session-status";
import { StoredSessionCard } from "./stored-session-card";
import { usePolling } from "./use-polling";

/** How often the page asks for the status; WhatsApp rotates its QR about every 20 s. */
const POLL_MS = 1500;

/** Errors the user can act on, in their words (the rest show the API's own message). */
const ERROR_TEXT: Record<string, string> = {
  connection_limit: "The server has no room for another WhatsApp connection right now. Please try again in a few minutes.",
  browser_not_found: "This server cannot run WhatsApp connections, and no other server could take yours right now. Please try again in a few minutes.",
  leased_elsewhere: "Your WhatsApp session is running on another server instance, which cannot be reached from here right now. Try again in a minute.",
  forward_failed: "Your WhatsApp session is running on another server instance, which did not answer in time. Check the session's status before trying again.",
  pocketbase_unavailable: "The session database (PocketBase) is unreachable right now. Your session is safe; try again shortly.",
  pocketbase_service_auth_failed: "The session database (PocketBase) is unreachable right now. Your session is safe; try again shortly.",
};

const ACTION_NAME = { connect: "Connect", disconnect: "Disconnect", logout: "Log out" } as const;

/** The live connection: status, QR, actions, phone number, test message, stored session. */
export function WhatsAppPanel() {
  const router = useRouter();
  const [session, setSession] = useState<UserSessionView | null>(null);
  // What the last action answered, and what the status poll last answered (cleared when it succeeds).
  const [actionError, setActionError] = useState<string | null>(null);
  const [pollError, setPollError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  /** How many actions have answered (focus is put back after each one's render). */
  const [acted, setActed] = useState(0);

  // Bumped by every action: a poll that started before it answers with an older state.
  const actions = useRef(0);
  const actionsBox = useRef<HTMLDivElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  const refresh = useCallback(async (signal: AbortSignal) => {
    const startedAfter = actions.current;
    const answer = await callApi<UserSessionView>("GET", "/api/whatsapp/status", undefined, signal);
    if (signal.aborted || startedAfter !== actions.current) return;
    if (answer.ok) {
      setSession(answer.data);
      setPollError(null);
    } else if (answer.status === 401) {
      router.replace("/login");
    } else {
      setPollError(ERROR_TEXT[answer.code] ?? answer.message);
    }
  }, [router]);

  usePolling(refresh, POLL_MS);

  async function act(action: "connect" | "disconnect" | "logout") {
    if (action === "logout" && !window.confirm("Log out of WhatsApp? This unlinks this service from your phone and deletes the stored session; you will have to scan a QR code again.")) {
      return;
    }
    actions.current += 1;
    setBusy(action);
    setActionError(null);
    const answer = await callApi<UserSessionView>("POST", `/api/whatsapp/${action}`);
    actions.current += 1;
    setBusy(null);
    if (answer.ok) setSession(answer.data);
    else if (answer.status === 401) router.replace("/login");
    else setActionError(`${ACTION_NAME[action]} did not go through. ${ERROR_TEXT[answer.code] ?? answer.message}`);
    setActed((count) => count + 1);
  }

  // The button pressed was disabled while busy, or is gone (Connect becomes Disconnect):
  // keep keyboard focus in the panel. After the answer's render, not before it (a frame
  // callback could run first, and find only the disabled buttons).
  useEffect(() => {
    if (!acted || (document.activeElement && document.activeElement !== document.body)) return;
    (actionsBox.current?.querySelector<HTMLButtonElement>("button:not(:disabled)") ?? heading.current)?.focus();
  }, [acted]);

  const status = session?.status ?? null;
  const text = status ? STATUS_TEXT[status] : null;
  const running = status !== null && !["disconnected", "failed"].includes(status);
  // A linked device (or a stored one) to log out of; a QR nobody scanned has none.
  const linked = status === "authenticating" || status === "ready" || Boolean(session?.archive);

  return (
    <div className="stack">
      {[...new Set([actionError, pollError])].filter(Boolean).map((message) => (
        <p key={message} role="alert" className="notice notice-error">
          {message}
        </p>
      ))}
      <section className="card" aria-labelledby="connection-title">
        <h2 id="connection-title" ref={heading} tabIndex={-1}>
          Connection
        </h2>
        <p className="status-line" aria-live="polite">
          <span className={`badge badge-${text?.tone ?? "idle"}`} data-testid="status">
            {text?.label ?? (pollError ? "Unknown" : "Loading…")}
          </span>
          <span className="muted" data-testid="status-detail">
            {session && pollError ? "Last known status: it cannot be checked right now." : text?.detail}
          </span>
        </p>
        {session?.phoneNumber && status === "ready" && (
          <p>
            Phone number: <strong data-testid="phone-number">+{session.phoneNumber}</strong>
          </p>
        )}
        {status === "qr_ready" && session?.qr && (
          <figure className="qr">
            {/* eslint-disable-next-line @next/next/no-img-element -- a data URL that changes every ~20 s */}
            <img src={session.qr} alt="WhatsApp QR code to link this service" width={264} height={264} />
            <figcaption>
              On your phone, open <strong>WhatsApp → Settings → Linked devices → Link a device</strong> and scan this code. It
              refreshes by itself.
            </figcaption>
          </figure>
        )}
        {/* No action before the status is known: Connect on a session that is running would mislead. */}
        {session !== null && (
          <div className="actions" ref={actionsBox}>
            {!running && (
              <button type="button" className="button button-primary" onClick={() => void act("connect")} disabled={busy !== null}>
                {busy === "connect" ? "Connecting…" : "Connect"}
              </button>
            )}
            {running && (
              <button type="button" className="button" onClick={() => void act("disconnect")} disabled={busy !== null}>
                {busy === "disconnect" ? "Disconnecting…" : "Disconnect"}
              </button>
            )}
            {linked && (
              <button type="button" className="button button-danger" onClick={() => void act("logout")} disabled={busy !== null}>
                {busy === "logout" ? "Logging out…" : "Log out of WhatsApp"}
              </button>
            )}
          </div>
        )}
      </section>
      {status === "ready" && <SendMessageForm />}
      {session && <StoredSessionCard archive={session.archive} keepRunning={session.keepRunning} archiveError={session.archiveError ?? null} />}
      <RecentEvents />
    </div>
  );
}
