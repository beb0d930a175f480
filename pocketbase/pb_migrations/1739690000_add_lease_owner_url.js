// whatsapp_sessions.lease_owner_url: where the instance holding the lease answers the
// other instances (its INSTANCE_URL; "" when it has none). An instance that gets a
// user's request for a session running elsewhere forwards it there
// (src/lib/http/forward-to-owner.ts), so any instance answers every route. Hidden like
// the rest of the lease: it names an internal address.

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.add(new TextField({ name: "lease_owner_url", max: 255, pattern: "^https?://[^/?#\\s]+$", hidden: true }));
    app.save(collection);
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_sessions");
    collection.fields.removeByName("lease_owner_url");
    app.save(collection);
  },
);
