import type { DatabaseSessionStore } from "../database-session-store";
import type { SessionArchiver } from "../session-archiver";
import type { SessionEventLog } from "../session-event-log";
import type { SessionLease } from "../session-lease";

/** What a WhatsAppChannel works with. */
export interface WhatsAppChannelOptions {
  userId: string;
  store: DatabaseSessionStore;
  archiver: SessionArchiver;
  /** The lease service: the channel runs only while this instance holds the user's lease. */
  leases: SessionLease;
  /** SESSION_TMP_DIR: LocalAuth's dataPath; the profile is `<dir>/session-<userId>`. */
  sessionRoot: string;
  chromePath: string;
  /** WA_WEB_VERSION and WA_WEB_CACHE_DIR: whatsapp-web.js's own web-version cache. */
  webVersion?: string;
  webCacheDir?: string;
  /** Re-archive this often while ready, when the profile changed. */
  archiveIntervalMs: number;
  /** Where the session's history goes (optional: tools and some tests run without). */
  events?: SessionEventLog;
  /**
   * A client not ready this long after its start (a QR nobody scans, a start that hangs)
   * stops by itself and gives its room back; the session stays as marked. Default: never.
   */
  readyWithinMs?: number;
  /** A send WhatsApp Web has not answered within this long fails (SendFailedError). Default: 60 s. */
  sendTimeoutMs?: number;
}
