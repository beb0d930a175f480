"use client";
import { useCallback, useState } from "react";

import { formatBytes } from "@/lib/format-bytes";
import type { SessionEvent } from "@/lib/messaging/session-event-log";
import { archiveFailureText } from "./archive-failure-text";
import { callApi } from "./call-api";
import { usePolling } from "./use-polling";
import type { SessionStatus } from "@/lib/messaging/database-session-store";

const EVENTS_POLL_MS = 5000;

/** A status change, as a line of history. */
const STATUS_EVENT_TEXT: Record<SessionStatus, string> = {
  created: "Created",
  initializing: "Starting",
  qr_ready: "Waiting for a QR scan",
  authenticating: "Linking",
  ready: "Ready",
  disconnected: "Disconnected",
  failed: "Failed",
};

/** One event in words. */
function describe(event: SessionEvent): string {
  const data = event.data;
  switch (event.event) {
    case "status":
      return `Status: ${event.status ? STATUS_EVENT_TEXT[event.status] : "?"}`;
    case "qr_issued":
      return "A QR code was shown to link WhatsApp";
    case "archive_saved":
      return `Session saved (${formatBytes(Number(data.bytes))}, ${data.ms} ms)`;
    case "archive_failed":
      return `Your session could not be saved: ${archiveFailureText(String(data.code))}. The last saved copy stays; saving is tried again`;
    case "restore":
      return `Session restored from ${data.tier === "database" ? "the database" : data.tier === "file" ? "this server's disk" : "memory"} (${data.ms} ms)`;
    case "restore_failed":
      return `The stored session could not be restored (${String(data.code)})`;
    case "restore_outcome":
      return data.success ? "Reconnected without a QR code" : "The restored session needed a new QR scan";
    case "lease_claimed":
      return data.resumed
        ? "Started again by itself on this server (it was running before a restart or a crash)"
        : "This server took charge of your session";
    case "lease_taken_over":
      return "Took your session over from a server that stopped answering";
    case "lease_lost":
      return data.reason === "not_renewed"
        ? "Stopped: this server lost touch with the session database (it starts again by itself once the database answers, unless another server has taken over)"
        : "Another server took your session over";
    case "logout":
      return data.by === "phone" ? "Logged out from your phone" : "Logged out of WhatsApp";
    case "stale_closed":
      return "Closed: the QR code was not scanned in time";
  }
}

/** The time of day for today's events, the date too for older ones (the history keeps a week). */
function when(at: string): string {
  const date = new Date(at);
  return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

/** The last 20 events of the user's session. */
export function RecentEvents() {
  const [events, setEvents] = useState<SessionEvent[] | null>(null);
  const [failed, setFailed] = useState(false);

  const load = useCallback(async (signal: AbortSignal) => {
    const answer = await callApi<{ events: SessionEvent[] }>("GET", "/api/whatsapp/events", undefined, signal);
    if (signal.aborted) return;
    if (answer.ok) setEvents(answer.data.events);
    setFailed(!answer.ok);
  }, []);
  usePolling(load, EVENTS_POLL_MS);

  return (
    <section className="card" aria-labelledby="events-title">
      <h2 id="events-title">Recent activity</h2>
      {events === null ? (
        <p className="muted">{failed ? "The activity cannot be loaded right now; trying again." : "Loading…"}</p>
      ) : events.length === 0 ? (
        <p className="muted">Nothing yet.</p>
      ) : (
        <ol className="events" data-testid="events">
          {events.map((event, index) => (
            <li key={`${event.at}-${index}`}>
              <time dateTime={event.at}>{when(event.at)}</time> {describe(event)}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
