// Shared by events.pb.js and send-keys.pb.js: the cleanup cron's retention, one DELETE for
// every record of a collection created before a cutoff (record-by-record deletes through
// the API would take minutes at scale).

/** Deletes the records of `collection` (one of this project's, never a request's) created before the body's `before`; answers `{ deleted }`. */
function pruneCreatedBefore(e, collection) {
  if (!/^[a-z_]+$/.test(collection)) throw new Error("not a collection name: " + collection);
  const body = e.requestInfo().body;
  const before = new Date(String(body.before || ""));
  if (isNaN(before.getTime())) throw new BadRequestError('"before" must be an ISO date.');
  // PocketBase stores dates as "YYYY-MM-DD HH:MM:SS.sssZ".
  const cutoff = before.toISOString().replace("T", " ");
  let deleted = 0;
  $app.runInTransaction((txApp) => {
    deleted = txApp.countRecords(collection, $dbx.exp("created < {:cutoff}", { cutoff }));
    txApp.db().newQuery("DELETE FROM `" + collection + "` WHERE created < {:cutoff}").bind({ cutoff }).execute();
  });
  return e.json(200, { deleted });
}

module.exports = { pruneCreatedBefore };
