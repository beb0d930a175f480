// whatsapp_sessions: the lease (lease_owner names a server: hostname-pid by default) and
// metadata (key id, the instance that saved, the migrated folder's name) are the
// backend's bookkeeping, read only with its superuser client. Hidden, a user's own
// list and view no longer return them, nor can a user filter on them.

const INTERNAL = ["lease_owner", "lease_expires", "lease_generation", "metadata"];

function setHidden(app, hidden) {
  const collection = app.findCollectionByNameOrId("whatsapp_sessions");
  for (const name of INTERNAL) collection.fields.getByName(name).hidden = hidden;
  app.save(collection);
}

migrate(
  (app) => setHidden(app, true),
  (app) => setHidden(app, false),
);
