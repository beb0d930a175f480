// Session leases (claim, renew, release), fenced archive uploads and status writes, the
// notes on how a resume went, and the lease-aware stale-session cleanup, for superusers only.
// The logic is in wavault-leases.js; each handler checks and writes in one transaction
// (an archive upload stores its file first, outside it: see saveArchiveFenced).

routerAdd(
  "POST",
  "/api/wavault/leases/claim",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    lib.requireFields(body, ["user", "owner", "ttlMs"]);
    const [user, owner, ttlMs] = [lib.text(body, "user"), lib.text(body, "owner"), lib.positiveInt(body, "ttlMs", lib.MAX_TTL_MS)];
    // ownerUrl: where the instance answers the others, which forward a user's requests
    // for this session to it (src/lib/http/forward-to-owner.ts).
    const ownerUrl = lib.ownerUrl(body);
    // onlyIfKeepRunning: a resume (src/lib/messaging/session-resumer.ts) claims only a
    // session still marked to keep running, with an archive to restore.
    const onlyIfKeepRunning = body.onlyIfKeepRunning === true;
    // onlyIfArchived: the re-encryption script claims only a session that still has an archive.
    const onlyIfArchived = body.onlyIfArchived === true;
    let result;
    $app.runInTransaction((txApp) => {
      result = lib.claim(txApp, user, owner, ownerUrl, ttlMs, onlyIfKeepRunning, onlyIfArchived);
    });
    if (result.notWanted) return e.json(412, { message: "The session is not marked to keep running, has no archive, or waits after failed resumes." });
    return e.json(result.held ? 409 : 200, result.lease);
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "POST",
  "/api/wavault/leases/renew",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    const held = lib.leaseFields(body);
    lib.requireFields(body, ["ttlMs"]);
    const ttlMs = lib.positiveInt(body, "ttlMs", lib.MAX_TTL_MS);
    let lease = null;
    $app.runInTransaction((txApp) => {
      lease = lib.renewHeld(txApp, held, new Date(Date.now() + ttlMs).toISOString(), body.keepLastActive === true);
    });
    return lease ? e.json(200, lease) : e.json(409, { message: "The lease was lost." });
  },
  $apis.requireSuperuserAuth(),
);

// Renews many leases of one owner in one transaction: an instance renews all the leases
// its clients hold in one request a round, not one request (and one commit) per session.
// Body: { owner, ttlMs, leases: [{ user, generation }] } (at most MAX_RENEWALS). Answers
// { renewed: [lease], lost: [user] }: a lease held no longer is no error here.
routerAdd(
  "POST",
  "/api/wavault/leases/renew-many",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    lib.requireFields(body, ["owner", "ttlMs", "leases"]);
    const owner = lib.text(body, "owner");
    const ttlMs = lib.positiveInt(body, "ttlMs", lib.MAX_TTL_MS);
    if (!Array.isArray(body.leases) || body.leases.length > lib.MAX_RENEWALS) {
      throw new BadRequestError(`"leases" must be a list of at most ${lib.MAX_RENEWALS} { user, generation }.`);
    }
    const held = body.leases.map((item) => {
      if (item === null || typeof item !== "object") throw new BadRequestError('Each of "leases" must be { user, generation }.');
      return lib.leaseFields({ user: item.user, owner, generation: item.generation });
    });
    const expiresAt = new Date(Date.now() + ttlMs).toISOString();
    const renewed = [];
    const lost = [];
    $app.runInTransaction((txApp) => {
      for (const lease of held) {
        const next = lib.renewHeld(txApp, lease, expiresAt, false);
        if (next) renewed.push(next);
        else lost.push(lease.user);
      }
    });
    return e.json(200, { renewed, lost });
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "POST",
  "/api/wavault/leases/release",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    const held = lib.leaseFields(body);
    $app.runInTransaction((txApp) => {
      const record = lib.heldBy(txApp, held.user, held.owner, held.generation);
      if (!record) return;
      record.set("lease_owner", "");
      record.set("lease_owner_url", "");
      record.set("lease_expires", "");
      txApp.save(record);
    });
    return e.noContent(204);
  },
  $apis.requireSuperuserAuth(),
);

// A fenced status write: status, last_active and (when given) phone_number,
// keep_running (a boolean) and clear_resume_failures (true), saved only while the caller still holds lease "generation",
// so a stale owner never writes over the status of the instance that took the session over.
routerAdd(
  "POST",
  "/api/wavault/sessions/status",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    const held = lib.leaseFields(body);
    const status = lib.text(body, "status");
    let saved = false;
    $app.runInTransaction((txApp) => {
      const record = lib.heldBy(txApp, held.user, held.owner, held.generation);
      if (!record) return;
      record.set("status", status);
      record.set("last_active", new Date().toISOString());
      if (body.phone_number) record.set("phone_number", String(body.phone_number));
      if (typeof body.keep_running === "boolean") record.set("keep_running", body.keep_running);
      // A user's stop, or a user's own start that reached ready, ends a run of failed resumes.
      if (body.keep_running === false || body.clear_resume_failures === true) {
        record.set("resume_failures", 0);
        record.set("resume_after", "");
      }
      txApp.save(record);
      saved = true;
    });
    if (!saved) return e.json(409, { message: "The lease was lost: a newer owner holds this session, or it was deleted." });
    return e.noContent(204);
  },
  $apis.requireSuperuserAuth(),
);

// How a resume went (src/lib/messaging/session-resumer.ts): outcome "failed" adds one to
// the session's run of failed resumes and sets when the next try is due (backoffMs,
// doubled per failure in a row, at most maxBackoffMs, from this server's clock);
// "stayed_up" ends the run. Applied only while the session's lease generation is still
// the resume's: after a newer claim (a user's connect, another instance's resume) the
// note is stale and changes nothing. Answers { applied, failures }.
routerAdd(
  "POST",
  "/api/wavault/sessions/resume-note",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    lib.requireFields(body, ["user", "generation", "outcome"]);
    const [user, generation] = [lib.text(body, "user"), lib.positiveInt(body, "generation")];
    const outcome = lib.text(body, "outcome");
    if (outcome !== "failed" && outcome !== "stayed_up") throw new BadRequestError('"outcome" must be "failed" or "stayed_up".');
    const backoffMs = outcome === "failed" ? lib.positiveInt(body, "backoffMs", lib.MAX_TTL_MS) : 0;
    const maxBackoffMs = outcome === "failed" ? lib.positiveInt(body, "maxBackoffMs", lib.MAX_TTL_MS) : 0;
    let result;
    $app.runInTransaction((txApp) => {
      result = lib.noteResume(txApp, user, generation, outcome, backoffMs, maxBackoffMs);
    });
    return e.json(200, result);
  },
  $apis.requireSuperuserAuth(),
);

// A fenced archive upload: multipart with the file "archive" and the fields user,
// owner, generation, size_bytes, metadata (JSON), optionally phone_number and
// keep_last_active ("true").
routerAdd(
  "POST",
  "/api/wavault/sessions/archive",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    const held = lib.leaseFields(body);
    lib.requireFields(body, ["size_bytes", "metadata"]);
    const sizeBytes = lib.positiveInt(body, "size_bytes");
    const metadata = lib.metadataOf(body);
    let files = null;
    try {
      files = e.findUploadedFiles("archive");
    } catch (_) {
      // no multipart file under that name
    }
    if (!files || files.length !== 1) throw new BadRequestError('Exactly one "archive" file is required.');
    if (files[0].size !== sizeBytes) throw new BadRequestError('"size_bytes" is not the size of the "archive" file.');
    const saved = lib.saveArchiveFenced($app, held, files[0], (record) => {
      record.set("compressed", true);
      record.set("size_bytes", sizeBytes);
      record.set("metadata", metadata);
      // A re-encryption of the same session is no activity: it keeps last_active.
      // (PocketBase reads a multipart "true" as the boolean.)
      if (String(body.keep_last_active) !== "true") record.set("last_active", new Date().toISOString());
      if (body.phone_number) record.set("phone_number", String(body.phone_number));
    });
    if (!saved) return e.json(409, { message: "The lease was lost: a newer owner holds this session." });
    return e.json(200, saved);
  },
  $apis.requireSuperuserAuth(),
  // Custom routes get PocketBase's 32 MiB default body limit. This one takes what the
  // archive field takes, read on every upload, so that a limit an operator raises in the
  // dashboard counts at once (the same id replaces the default's).
  new Middleware(
    (e) => {
      const { archiveBodyLimit } = require(`${__hooks}/wavault-leases.js`);
      return $apis.bodyLimit(archiveBodyLimit(e.app)).func(e);
    },
    -990, // PocketBase's own body limit's priority
    "pbBodyLimit",
  ),
);

// The cleanup cron's deletes: a batch of stale sessions (inactive since "before", lease
// not live) found and deleted in one transaction, so a user who comes back and claims
// the lease meanwhile keeps the session. Answers { deleted, users }; call again until
// it deletes none.
routerAdd(
  "POST",
  "/api/wavault/sessions/cleanup",
  (e) => {
    const lib = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    const before = new Date(String(body.before || ""));
    if (isNaN(before.getTime())) throw new BadRequestError('"before" must be an ISO date.');
    const limit = Math.min(lib.positiveInt(body, "limit"), 500);
    let users = [];
    $app.runInTransaction((txApp) => {
      users = lib.deleteStale(txApp, before, limit);
    });
    return e.json(200, { deleted: users.length, users });
  },
  $apis.requireSuperuserAuth(),
);
