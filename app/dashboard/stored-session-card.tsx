import { formatBytes } from "@/lib/format-bytes";
import type { StoredArchiveSummary } from "@/lib/messaging/session-summary";
import type { UserSessionView } from "@/lib/messaging/user-session-service";
import { archiveFailureText } from "./archive-failure-text";

/** What is stored of the user's session: sizes, ratio, when, encrypted, whether it starts again by itself, and whether saves are failing. */
export function StoredSessionCard({
  archive,
  keepRunning,
  archiveError,
}: {
  archive: StoredArchiveSummary | null;
  keepRunning: boolean;
  archiveError: UserSessionView["archiveError"];
}) {
  return (
    <section className="card" aria-labelledby="stored-session-title">
      <h2 id="stored-session-title">Stored session</h2>
      {archiveError && (
        <p className="notice notice-error" role="alert" data-testid="archive-error">
          Your latest changes could not be saved since {new Date(archiveError.since).toLocaleString()}:{" "}
          {archiveFailureText(archiveError.code)}. {archive ? "The last saved copy below stays" : "Nothing is stored yet"}; while WhatsApp
          runs, saving is tried again.
        </p>
      )}
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
