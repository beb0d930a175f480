// whatsapp_send_keys: the messages sent under an Idempotency-Key
// (src/lib/messaging/send-key-store.ts), so that a send retried after the instance that
// ran the session restarted, or after the session moved to another, sends nothing twice.
// A day's keys count; the daily cleanup deletes older ones. Backend-only bookkeeping:
// every rule is null (superusers only), and a user's keys go with the user.

migrate(
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    const collection = new Collection({
      type: "base",
      name: "whatsapp_send_keys",
      listRule: null,
      viewRule: null,
      createRule: null,
      updateRule: null,
      deleteRule: null,
      fields: [
        { name: "user", type: "relation", collectionId: users.id, required: true, maxSelect: 1, cascadeDelete: true },
        { name: "idempotency_key", type: "text", required: true, max: 255 },
        // SHA-256 of the recipient and the text: the same key with another message is refused.
        { name: "fingerprint", type: "text", required: true, max: 64 },
        { name: "message_id", type: "text", required: true, max: 512 },
        { name: "created", type: "autodate", onCreate: true, onUpdate: false },
      ],
      indexes: [
        "CREATE UNIQUE INDEX `idx_whatsapp_send_keys_user_key` ON `whatsapp_send_keys` (`user`, `idempotency_key`)",
        "CREATE INDEX `idx_whatsapp_send_keys_created` ON `whatsapp_send_keys` (`created`)",
      ],
    });
    app.save(collection);
  },
  (app) => {
    app.delete(app.findCollectionByNameOrId("whatsapp_send_keys"));
  },
);
