// whatsapp_session_events.at: when the event happened, set by the instance that recorded
// it. `created` is when PocketBase stored it, which can come later (events are written
// in the background, one user's at a time), so in a handover the old instance's last
// event could be stored after the new instance's first. The history is ordered by `at`.
// Events stored before this migration keep an empty `at`: they all happened before any
// event that has one, which is where "-at" sorts them, and readers fall back to
// `created` for their time.

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_session_events");
    collection.fields.add(new DateField({ name: "at" }));
    collection.addIndex("idx_whatsapp_session_events_user_at", false, "`user`, `at`", "");
    app.save(collection);
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_session_events");
    collection.removeIndex("idx_whatsapp_session_events_user_at");
    collection.fields.removeByName("at");
    app.save(collection);
  },
);
