// whatsapp_session_events: what happened to a session and why (status changes, QR
// issued, archives, restores, leases, logouts, cleanups), kept SESSION_EVENTS_RETENTION_DAYS
// by the cleanup cron. A user may list and view only their own events; writes are the
// backend's (superuser), so the write rules are null.
//
// The session relation does NOT cascade (the issue asked for it): a logout or a cleanup
// deletes the session record, and a cascade would take that session's history with it
// — the very events that explain why it asked for a QR again, and the failed restores
// the success rate must count. PocketBase empties the optional relation instead; the
// events stay until retention deletes them. Deleting a user deletes theirs (cascade on user).

const EVENTS = [
  "status",
  "qr_issued",
  "archive_saved",
  "restore",
  "restore_failed",
  "restore_outcome",
  "lease_claimed",
  "lease_lost",
  "lease_taken_over",
  "logout",
  "stale_closed",
];
const STATUSES = ["created", "initializing", "qr_ready", "authenticating", "ready", "disconnected", "failed"];

migrate(
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    const sessions = app.findCollectionByNameOrId("whatsapp_sessions");
    const ownRecord = '@request.auth.id != "" && user = @request.auth.id';

    const collection = new Collection({
      type: "base",
      name: "whatsapp_session_events",
      listRule: ownRecord,
      viewRule: ownRecord,
      createRule: null,
      updateRule: null,
      deleteRule: null,
      fields: [
        { name: "session", type: "relation", required: false, collectionId: sessions.id, cascadeDelete: false, minSelect: 0, maxSelect: 1 },
        { name: "user", type: "relation", required: true, collectionId: users.id, cascadeDelete: true, minSelect: 0, maxSelect: 1 },
        { name: "event", type: "select", required: true, maxSelect: 1, values: EVENTS },
        { name: "status", type: "select", maxSelect: 1, values: STATUSES },
        { name: "data", type: "json", maxSize: 16 * 1024 },
        { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      ],
      indexes: [
        "CREATE INDEX `idx_whatsapp_session_events_created` ON `whatsapp_session_events` (`created`)",
        "CREATE INDEX `idx_whatsapp_session_events_session_created` ON `whatsapp_session_events` (`session`, `created`)",
        "CREATE INDEX `idx_whatsapp_session_events_user_created` ON `whatsapp_session_events` (`user`, `created`)",
        "CREATE INDEX `idx_whatsapp_session_events_event_created` ON `whatsapp_session_events` (`event`, `created`)",
      ],
    });

    app.save(collection);
  },
  (app) => {
    app.delete(app.findCollectionByNameOrId("whatsapp_session_events"));
  },
);
