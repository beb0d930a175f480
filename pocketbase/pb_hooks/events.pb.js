// Event retention for the cleanup cron, superusers only (see wavault-prune.js).

routerAdd(
  "POST",
  "/api/wavault/events/prune",
  (e) => require(`${__hooks}/wavault-prune.js`).pruneCreatedBefore(e, "whatsapp_session_events"),
  $apis.requireSuperuserAuth(),
);
