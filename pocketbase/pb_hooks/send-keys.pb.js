// Idempotency-key retention for the cleanup cron, superusers only: one DELETE for every
// key recorded before the cutoff (see src/lib/messaging/send-key-store.ts).

routerAdd(
  "POST",
  "/api/wavault/send-keys/prune",
  (e) => {
    const body = e.requestInfo().body;
    const before = new Date(String(body.before || ""));
    if (isNaN(before.getTime())) throw new BadRequestError('"before" must be an ISO date.');
    // PocketBase stores dates as "YYYY-MM-DD HH:MM:SS.sssZ".
    const cutoff = before.toISOString().replace("T", " ");
    let deleted = 0;
    $app.runInTransaction((txApp) => {
      deleted = txApp.countRecords("whatsapp_send_keys", $dbx.exp("created < {:cutoff}", { cutoff }));
      txApp.db().newQuery("DELETE FROM whatsapp_send_keys WHERE created < {:cutoff}").bind({ cutoff }).execute();
    });
    return e.json(200, { deleted });
  },
  $apis.requireSuperuserAuth(),
);
