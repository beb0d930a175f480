// whatsapp_instances: the app instances that resume sessions by themselves
// (src/lib/messaging/instance-registry.ts), each renewing its own record while it runs
// and deleting it when it stops. The resumer of one instance holds back while another
// live instance, with room, runs fewer sessions for its cap: so the sessions a deploy
// or a crash leaves waiting spread over the instances instead of filling the first one
// to look. How many sessions an instance runs is counted from its live leases, not
// stored here (hence the new index on whatsapp_sessions.lease_owner). Backend-only
// bookkeeping: every rule is null (superusers only).

migrate(
  (app) => {
    const collection = new Collection({
      type: "base",
      name: "whatsapp_instances",
      listRule: null,
      viewRule: null,
      createRule: null,
      updateRule: null,
      deleteRule: null,
      fields: [
        // The lease owner this instance's leases carry (SessionLease.owner): unique per process.
        { name: "owner", type: "text", required: true, max: 255 },
        { name: "instance_id", type: "text", max: 200 },
        { name: "url", type: "text", max: 2048 },
        // Whether it takes more sessions now: room under its cap and memory budget, and its starts succeed.
        { name: "accepting", type: "bool" },
        { name: "max_connections", type: "number", min: 1, onlyInt: true, required: true },
        // Live until then, unless renewed (set by the heartbeat hook route, by PocketBase's clock).
        { name: "expires", type: "date", required: true },
        { name: "created", type: "autodate", onCreate: true, onUpdate: false },
        { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
      ],
      indexes: [
        "CREATE UNIQUE INDEX `idx_whatsapp_instances_owner` ON `whatsapp_instances` (`owner`)",
        "CREATE INDEX `idx_whatsapp_instances_expires` ON `whatsapp_instances` (`expires`)",
      ],
    });
    app.save(collection);

    const sessions = app.findCollectionByNameOrId("whatsapp_sessions");
    sessions.addIndex("idx_whatsapp_sessions_lease_owner", false, "`lease_owner`", "");
    app.save(sessions);
  },
  (app) => {
    const sessions = app.findCollectionByNameOrId("whatsapp_sessions");
    sessions.removeIndex("idx_whatsapp_sessions_lease_owner");
    app.save(sessions);
    app.delete(app.findCollectionByNameOrId("whatsapp_instances"));
  },
);
