// whatsapp_sessions.keep_running: whether the user wants the session running. Set when
// the session reaches ready, cleared when the user disconnects (or logs out, which
// deletes the record); a stop for a deploy or a crash leaves it set. Instances start
// the sessions that want to run and that nobody runs (src/lib/messaging/session-resumer.ts),
// so a deploy, a restart or a dead instance needs nobody to press Connect again.
//
// Sessions recorded "ready" when this runs were running: they are marked to keep
// running. (Those a deploy has already stopped come back at their next connect.)

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.add(new BoolField({ name: "keep_running" }));
    app.save(collection);
    app.db().newQuery("UPDATE whatsapp_sessions SET keep_running = TRUE WHERE status = 'ready'").execute();
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.removeByName("keep_running");
    app.save(collection);
  },
);
