// The cleanup cron's sweep of archive files no session record names, superusers only.
// They are rare: a fenced upload stores its file before the transaction that makes the
// record name it (see saveArchiveFenced in wavault-leases.js), so a PocketBase that dies
// in between leaves the file behind; so does a failed delete of a replaced or deleted
// session's file after its commit. The ages that decide are PocketBase's own (see
// wavault-archive-files.js): a file stored for a save still under way is seconds old. Works the
// same on local storage and on S3 (PocketBase's filesystem). Answers { deleted, scanned }.

routerAdd(
  "POST",
  "/api/wavault/sessions/sweep-files",
  (e) => {
    const { positiveInt } = require(`${__hooks}/wavault-leases.js`);
    const { sweepArchiveFiles } = require(`${__hooks}/wavault-archive-files.js`);
    const limit = Math.min(positiveInt(e.requestInfo().body, "limit"), 10000);
    return e.json(200, sweepArchiveFiles($app, limit));
  },
  $apis.requireSuperuserAuth(),
);
