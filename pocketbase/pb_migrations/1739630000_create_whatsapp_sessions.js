// whatsapp_sessions: one record per user holding their encrypted WhatsApp Web profile
// archive (see DESIGN.md, "Data model"). A user may list and view only their own record;
// create, update and delete are left to superusers (the backend), so the rules are null.

const STATUSES = ["created", "initializing", "qr_ready", "authenticating", "ready", "disconnected", "failed"];
const DEFAULT_ARCHIVE_MAX_BYTES = 50 * 1024 * 1024;

migrate(
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    const archiveMaxBytes = parseInt($os.getenv("SESSION_ARCHIVE_MAX_BYTES"), 10) || DEFAULT_ARCHIVE_MAX_BYTES;
    const ownRecord = '@request.auth.id != "" && user = @request.auth.id';

    const collection = new Collection({
      type: "base",
      name: "whatsapp_sessions",
      listRule: ownRecord,
      viewRule: ownRecord,
      createRule: null,
      updateRule: null,
      deleteRule: null,
      fields: [
        {
          name: "user",
          type: "relation",
          required: true,
          collectionId: users.id,
          cascadeDelete: true,
          minSelect: 0,
          maxSelect: 1,
        },
        {
          name: "archive",
          type: "file",
          protected: true,
          maxSelect: 1,
          maxSize: archiveMaxBytes,
          mimeTypes: [],
        },
        { name: "compressed", type: "bool" },
        { name: "size_bytes", type: "number", onlyInt: true, min: 0 },
        { name: "phone_number", type: "text", max: 32 },
        { name: "status", type: "select", maxSelect: 1, values: STATUSES },
        { name: "last_active", type: "date" },
        { name: "metadata", type: "json", maxSize: 64 * 1024 },
        { name: "lease_owner", type: "text", max: 255 },
        { name: "lease_expires", type: "date" },
        { name: "lease_generation", type: "number", onlyInt: true, min: 0 },
        { name: "created", type: "autodate", onCreate: true, onUpdate: false },
        { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
      ],
      indexes: [
        "CREATE UNIQUE INDEX `idx_whatsapp_sessions_user` ON `whatsapp_sessions` (`user`)",
        "CREATE INDEX `idx_whatsapp_sessions_last_active` ON `whatsapp_sessions` (`last_active`)",
        "CREATE INDEX `idx_whatsapp_sessions_phone_number` ON `whatsapp_sessions` (`phone_number`)",
      ],
    });

    app.save(collection);
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    app.delete(collection);
  },
);
