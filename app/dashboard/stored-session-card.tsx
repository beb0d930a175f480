import { formatBytes } from "@/lib/format-bytes";
import type { StoredArchiveSummary } from "@/lib/messaging/session-summary";

/** What is stored of the user's session: sizes, ratio, when, encrypted, and whether it starts again by itself. */
export function StoredSessionCard({ archive, keepRunning }: { archive: StoredArchiveSummary | null; keepRunning: boolean }) {
  return (
    <section className="card" aria-labelledby="stored-session-title">
      <h2 id="stored-session-title">Stored session</h2>
      {archive ? (
        <dl className="facts">
          <dt>Archive size</dt>
          <dd data-testid="archive-size">{formatBytes(archive.sizeBytes)}</dd>
          <dt>Browser profile size</dt>
          <dd data-testid="raw-size">{formatBytes(archive.rawBytes)}</dd>
          <dt>Compression</dt>
          <dd>{archive.compressionRatio === null ? "–" : `${(archive.compressionRatio * 100).toFixed(1)}% of the profile`}</dd>
          <dt>Last saved</dt>
          <dd>{archive.savedAt ? new Date(archive.savedAt).toLocaleString() : "–"}</dd>
          <dt>Encrypted</dt>
          <dd>{archive.encrypted ? "Yes (AES-256-GCM)" : "No"}</dd>
          <dt>After a restart</dt>
          <dd data-testid="keep-running">
            {keepRunning ? "Reconnects by itself, until you disconnect" : "Stays off until you connect"}
          </dd>
        </dl>
      ) : (
        <p className="muted">No stored session yet. Once WhatsApp is ready, your session is saved so it survives restarts.</p>
      )}
    </section>
  );
}
