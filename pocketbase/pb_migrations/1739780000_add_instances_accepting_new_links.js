// whatsapp_instances.accepting_new_links: whether an instance takes new links now (clients
// that wait for a QR scan): it takes sessions, and fewer than its MAX_WHATSAPP_QR_WAITING
// clients wait for a scan. A connect for a user with no stored session that its instance
// has no room for goes only to such a peer (src/lib/messaging/instance-registry.ts,
// peersWithRoom), instead of to peers that would refuse it. Set by each heartbeat: records
// there when this runs get theirs at the next one, within a third of the lease TTL.

migrate(
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_instances");
    collection.fields.add(new BoolField({ name: "accepting_new_links" }));
    app.save(collection);
  },
  (app) => {
    const collection = app.findCollectionByNameOrId("whatsapp_instances");
    collection.fields.removeByName("accepting_new_links");
    app.save(collection);
  },
);
