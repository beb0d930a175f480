// Shared by instances.pb.js: the records of the app instances that resume sessions
// (src/lib/messaging/instance-registry.ts). Every time here is PocketBase's clock, the
// same clock the leases use, so instances whose clocks disagree still agree on who is
// live and how many live leases each one holds.

const { findFirstOrNull, storedDate } = require(`${__hooks}/wavault-leases.js`);

const INSTANCES = "whatsapp_instances";
/** A record expired this long ago belongs to an instance that died without removing it: deleted. */
const FORGET_AFTER_MS = 60 * 60 * 1000;

function findInstance(txApp, owner) {
  return findFirstOrNull(txApp, INSTANCES, "owner = {:owner}", { owner });
}

/** Creates or renews `owner`'s record, live for `ttlMs` from now; forgets long-dead instances. */
function beat(txApp, owner, fields, ttlMs) {
  const record = findInstance(txApp, owner) || new Record(txApp.findCollectionByNameOrId(INSTANCES));
  record.set("owner", owner);
  record.set("instance_id", fields.instanceId);
  record.set("url", fields.url);
  record.set("accepting", fields.accepting);
  record.set("accepting_new_links", fields.acceptingNewLinks);
  record.set("max_connections", fields.maxConnections);
  const expiresAt = new Date(Date.now() + ttlMs).toISOString();
  record.set("expires", expiresAt);
  txApp.save(record);
  txApp
    .db()
    .newQuery("DELETE FROM whatsapp_instances WHERE expires < {:cutoff}")
    .bind({ cutoff: storedDate(new Date(Date.now() - FORGET_AFTER_MS)) })
    .execute();
  return { expiresAt };
}

/** Deletes `owner`'s record (a no-op when there is none). */
function leave(txApp, owner) {
  const record = findInstance(txApp, owner);
  if (record) txApp.delete(record);
  return { left: record !== null };
}

/** Every live instance, oldest first, each with the number of live leases it holds. */
function live(app) {
  const rows = arrayOf(
    new DynamicModel({ owner: "", instance_id: "", url: "", accepting: false, accepting_new_links: false, max_connections: 0, updated: "", clients: 0 }),
  );
  const now = storedDate(new Date());
  app
    .db()
    .newQuery(
      "SELECT i.owner, i.instance_id, i.url, i.accepting, i.accepting_new_links, i.max_connections, i.updated," +
        " (SELECT COUNT(*) FROM whatsapp_sessions s WHERE s.lease_owner = i.owner AND s.lease_expires > {:now}) AS clients" +
        " FROM whatsapp_instances i WHERE i.expires > {:now} ORDER BY i.created, i.owner",
    )
    .bind({ now })
    .all(rows);
  return rows.map((row) => ({
    owner: row.owner,
    instanceId: row.instance_id,
    url: row.url,
    accepting: row.accepting,
    acceptingNewLinks: row.accepting_new_links,
    maxConnections: row.max_connections,
    clients: row.clients,
    seenSecondsAgo: Math.max(0, Math.round((Date.now() - Date.parse(row.updated.replace(" ", "T"))) / 1000)),
  }));
}

module.exports = { beat, leave, live };
