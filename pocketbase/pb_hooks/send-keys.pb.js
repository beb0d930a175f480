// Idempotency-Key retention for the cleanup cron, superusers only: the keys recorded
// before the cutoff (see src/lib/messaging/send-key-store.ts and wavault-prune.js).

routerAdd(
  "POST",
  "/api/wavault/send-keys/prune",
  (e) => require(`${__hooks}/wavault-prune.js`).pruneCreatedBefore(e, "whatsapp_send_keys"),
  $apis.requireSuperuserAuth(),
);
