// whatsapp_sessions.resume_failures / resume_after: how often in a row a session that
// starts by itself (src/lib/messaging/session-resumer.ts) failed to start or died soon
// after ready, and when the next try is due. Kept with the session, not in each
// instance's memory, so N instances try a failing session once per wait, not N times,
// and a restarted instance does not try it again at once. Hidden: the backend's
// bookkeeping.

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.add(new NumberField({ name: "resume_failures", min: 0, onlyInt: true, hidden: true }));
    collection.fields.add(new DateField({ name: "resume_after", hidden: true }));
    app.save(collection);
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.removeByName("resume_failures");
    collection.fields.removeByName("resume_after");
    app.save(collection);
  },
);
