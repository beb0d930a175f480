// whatsapp_send_keys.message_id may be empty: a key is now claimed (recorded without a
// message id) before its message is sent, and the id is filled in once it is out
// (src/lib/messaging/send-key-store.ts). A retry that finds a claim without an id, on any
// instance, is refused (409 idempotency_key_in_progress) instead of sending again — also
// when the instance that claimed it died mid-send, which before this left no record at all.

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_send_keys");
    collection.fields.getByName("message_id").required = false;
    app.save(collection);
  },
  (app) => {
    // Claims whose outcome was never recorded cannot be kept once an id is required.
    app.db().newQuery("DELETE FROM whatsapp_send_keys WHERE message_id = ''").execute();
    const collection = app.findCollectionByNameOrId("whatsapp_send_keys");
    collection.fields.getByName("message_id").required = true;
    app.save(collection);
  },
);
