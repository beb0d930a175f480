// whatsapp_session_events.event gains "archive_failed": a running session's profile
// could not be saved (an archive over PocketBase's size limit, a full disk, PocketBase
// out of reach), recorded once per run of failures (and when its cause changes), so the
// user and the operator see that the stored session is falling behind. Down deletes
// those events first: the select field may not keep a value it no longer allows.

const EVENT = "archive_failed";

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_session_events");
    const field = collection.fields.getByName("event");
    field.values = [...field.values, EVENT];
    app.save(collection);
  },
  (app) => {
    app.db().newQuery("DELETE FROM whatsapp_session_events WHERE event = {:event}").bind({ event: EVENT }).execute();
    const collection = app.findCollectionByNameOrId("whatsapp_session_events");
    const field = collection.fields.getByName("event");
    field.values = field.values.filter((value) => value !== EVENT);
    app.save(collection);
  },
);
