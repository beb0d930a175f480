// Shared by leases.pb.js: session leases, fenced archive uploads and status writes, and
// the stale-session cleanup, each checked and written in one transaction (PocketBase
// runs write transactions one at a time), so two instances can never both hold a
// lease, a stale owner can never overwrite an archive or a status saved under a newer
// lease generation, and the cleanup never deletes a session whose lease was claimed
// after it looked.

const COLLECTION = "whatsapp_sessions";

/** PocketBase's "not found" (as opposed to a database failure). */
function isNoRows(error) {
  return String(error).includes("no rows in result set");
}

/** The first record `filter` selects, or null when there is none. */
function findFirstOrNull(txApp, collection, filter, params) {
  try {
    return txApp.findFirstRecordByFilter(collection, filter, params);
  } catch (error) {
    if (isNoRows(error)) return null;
    throw error; // a database failure is not "no record"
  }
}

function findSession(txApp, userId) {
  return findFirstOrNull(txApp, COLLECTION, "user = {:user}", { user: userId });
}

/** A date field of a record in ms since the epoch (0 when unset). */
function dateMs(record, field) {
  const date = record.getDateTime(field);
  return date.isZero() ? 0 : date.time().unixMilli();
}

function leaseOf(record) {
  return {
    user: record.getString("user"),
    owner: record.getString("lease_owner"),
    ownerUrl: record.getString("lease_owner_url"),
    generation: record.getInt("lease_generation"),
    expiresAt: new Date(dateMs(record, "lease_expires")).toISOString(),
  };
}

function requireFields(body, names) {
  for (const name of names) {
    if (body[name] === undefined || body[name] === null || body[name] === "") {
      throw new BadRequestError(`Missing "${name}".`);
    }
  }
}

/** A positive whole number, at most `max`, from a JSON or multipart field (multipart values are strings). */
function positiveInt(body, name, max = Number.MAX_SAFE_INTEGER) {
  const value = typeof body[name] === "string" && body[name].trim() !== "" ? Number(body[name]) : body[name];
  if (!Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new BadRequestError(`"${name}" must be a whole number from 1 to ${max}.`);
  }
  return value;
}

/**
 * A non-empty string of at most 255 characters. PocketBase turns a multipart value that
 * looks like a number into one (its String() is then the raw value again).
 */
function text(body, name) {
  const value = typeof body[name] === "number" && Number.isFinite(body[name]) ? String(body[name]) : body[name];
  if (typeof value !== "string" || value === "" || value.length > 255) {
    throw new BadRequestError(`"${name}" must be a string of 1 to 255 characters.`);
  }
  return value;
}

/**
 * Where the claiming instance answers other instances (its INSTANCE_URL): an http(s)
 * origin of at most 255 characters, or "" when it has none (400 otherwise).
 */
function ownerUrl(body) {
  if (body.ownerUrl === undefined || body.ownerUrl === null || body.ownerUrl === "") return "";
  const value = text(body, "ownerUrl");
  if (!/^https?:\/\/[^/?#\s]+$/.test(value)) throw new BadRequestError('"ownerUrl" must be an http(s) origin, such as http://10.0.0.5:3000.');
  return value;
}

/** A lease's longest TTL: a day (a longer one would keep a crashed instance's sessions from everyone). */
const MAX_TTL_MS = 24 * 60 * 60 * 1000;

/** The most leases one renew-many request renews (src/lib/messaging/session-lease.ts sends at most this many). */
const MAX_RENEWALS = 1000;

/** The lease a request names: { user, owner, generation }, each checked (400 otherwise). */
function leaseFields(body) {
  requireFields(body, ["user", "owner", "generation"]);
  return { user: text(body, "user"), owner: text(body, "owner"), generation: positiveInt(body, "generation") };
}

/** An archive's metadata: a JSON object with its sha256 (400 otherwise). */
function metadataOf(body) {
  let metadata;
  try {
    metadata = JSON.parse(String(body.metadata));
  } catch (_) {
    throw new BadRequestError('"metadata" must be JSON.');
  }
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata) || typeof metadata.sha256 !== "string") {
    throw new BadRequestError('"metadata" must be a JSON object with the archive\'s "sha256".');
  }
  return metadata;
}

/**
 * Takes the lease when it is free, expired, or already this owner's; else returns who
 * holds it. With onlyIfKeepRunning (a session starting by itself) the session must be
 * marked keep_running, have an archive and not wait after failed resumes (resume_after
 * in the future) ({ notWanted: true } otherwise), and any live
 * lease counts as held, this owner's too: work of its own (a user's disconnect, a
 * logout) holds it then. With onlyIfArchived (a tool working on a stored archive) the
 * session must have an archive ({ notWanted: true } otherwise): a claim never creates a
 * record then, so a session deleted meanwhile stays deleted.
 */
function claim(txApp, userId, owner, ownerUrl, ttlMs, onlyIfKeepRunning = false, onlyIfArchived = false) {
  let record = findSession(txApp, userId);
  if (onlyIfKeepRunning && (!record || !record.getBool("keep_running") || record.getString("archive") === "" || dateMs(record, "resume_after") > Date.now())) {
    return { notWanted: true };
  }
  if (onlyIfArchived && (!record || record.getString("archive") === "")) return { notWanted: true };
  if (!record) {
    record = new Record(txApp.findCollectionByNameOrId(COLLECTION));
    record.set("user", userId);
    record.set("status", "created");
    record.set("lease_generation", 0);
  }
  const now = Date.now();
  const holder = record.getString("lease_owner");
  const live = holder !== "" && dateMs(record, "lease_expires") > now;
  if (live && (holder !== owner || onlyIfKeepRunning)) return { held: true, lease: leaseOf(record) };
  // A new holder, or the same one after its lease lapsed: a new generation fences off
  // every upload made under the old one. An owner whose lease lapsed without a release
  // (it crashed, or lost its connection) is taken over: the answer names it.
  // A generation is the claim's time in ms (or one more than the last, should the clock
  // go back), so a session record deleted and created again never repeats one: a lease
  // on the old record can never pass for a lease on the new one.
  if (!live) record.set("lease_generation", Math.max(record.getInt("lease_generation") + 1, now));
  const takenOverFrom = !live && holder !== "" && holder !== owner ? holder : "";
  record.set("lease_owner", owner);
  record.set("lease_owner_url", ownerUrl);
  record.set("lease_expires", new Date(now + ttlMs).toISOString());
  txApp.save(record);
  return { held: false, lease: Object.assign(leaseOf(record), { takenOverFrom }) };
}

/** The session record when `owner` still holds lease `generation` (expired or not, as long as nobody took it over). */
function heldBy(txApp, userId, owner, generation) {
  const record = findSession(txApp, userId);
  if (!record) return null;
  if (record.getString("lease_owner") !== owner || record.getInt("lease_generation") !== generation) return null;
  return record;
}

/**
 * Extends the lease `held` ({ user, owner, generation }) to `expiresAt` (an ISO date)
 * while its holder still holds it; a renewal also counts as the session's activity
 * (last_active), unless `keepLastActive`. Returns the lease, or null when it is held no
 * longer. One UPDATE, not a record save: every running session is renewed every third
 * of the TTL, so this is PocketBase's most frequent write (about 20 times cheaper).
 */
function renewHeld(txApp, held, expiresAt, keepLastActive) {
  // A running session is an active one, however long nothing in it changed: the cleanup
  // must not take it for stale if its owner later loses touch with PocketBase. A tool's
  // lease (keepLastActive: re-encryption) is no activity of the user's.
  const result = txApp
    .db()
    .newQuery(
      "UPDATE " + COLLECTION + " SET lease_expires = {:expires}" + (keepLastActive ? "" : ", last_active = {:now}") +
        " WHERE user = {:user} AND lease_owner = {:owner} AND lease_generation = {:generation}",
    )
    .bind({ expires: storedDate(new Date(expiresAt)), now: storedDate(new Date()), user: held.user, owner: held.owner, generation: held.generation })
    .execute();
  if (result.rowsAffected() !== 1) return null;
  return { user: held.user, owner: held.owner, generation: held.generation, expiresAt };
}

/**
 * Notes how a resume under lease `generation` went (see the resume-note route); returns
 * { applied, failures }: not applied when the session is gone or was claimed anew since.
 */
function noteResume(txApp, userId, generation, outcome, backoffMs, maxBackoffMs) {
  const record = findSession(txApp, userId);
  if (!record || record.getInt("lease_generation") !== generation) return { applied: false, failures: 0 };
  const failures = outcome === "stayed_up" ? 0 : record.getInt("resume_failures") + 1;
  if (failures === 0) {
    if (record.getInt("resume_failures") === 0) return { applied: true, failures };
    record.set("resume_after", "");
  } else {
    const waitMs = Math.min(backoffMs * Math.pow(2, Math.min(failures - 1, 30)), maxBackoffMs);
    record.set("resume_after", new Date(Date.now() + waitMs).toISOString());
  }
  record.set("resume_failures", failures);
  txApp.save(record);
  return { applied: true, failures };
}

/** PocketBase's stored date format ("YYYY-MM-DD HH:MM:SS.sssZ"), for comparisons in filters. */
function storedDate(date) {
  return date.toISOString().replace("T", " ");
}

/**
 * Deletes up to `limit` sessions inactive since `before` (by last_active, or by updated
 * when it was never set) whose lease is not live; returns their users. PocketBase
 * deletes each archive file once the transaction has committed.
 */
function deleteStale(txApp, before, limit) {
  const stale = txApp.findRecordsByFilter(
    COLLECTION,
    "((last_active != '' && last_active < {:before}) || (last_active = '' && updated < {:before}))" +
      " && (lease_owner = '' || lease_expires = '' || lease_expires < {:now})",
    "",
    limit,
    0,
    { before: storedDate(before), now: storedDate(new Date()) },
  );
  const users = [];
  for (const record of stale) {
    users.push(record.getString("user"));
    txApp.delete(record);
  }
  return users;
}

/**
 * Stores `file` as the archive of the session `held` names, with the other fields
 * `setFields` sets, if `held` still holds its lease; returns the saved record, or null
 * when the lease was lost (nothing changed then).
 *
 * The file goes to storage before the transaction and the transaction only swaps the
 * record's reference to it: PocketBase runs write transactions one at a time, and a
 * file written inside one (20 MB to S3 can take seconds) would hold every other
 * instance's lease renewals, claims and status writes until it finished. The record is
 * validated with the file first, as a plain save would; in the transaction it is saved
 * with the file's stored name, which PocketBase's validation accepts only for a file it
 * uploaded itself. PocketBase deletes the replaced file once the transaction commits; a
 * file stored for a save that then fails or loses its lease is deleted here. (A crash
 * between the two leaves that file in storage, unreferenced, until the cleanup cron's
 * sweep: wavault-archive-files.js.)
 */
function saveArchiveFenced(app, held, file, setFields) {
  const before = heldBy(app, held.user, held.owner, held.generation);
  if (!before) return null;
  before.set("archive", file);
  setFields(before);
  app.validate(before); // throws a 400 with the failing fields
  const key = before.baseFilesPath() + "/" + file.name;
  const fsys = app.newFilesystem();
  try {
    fsys.uploadFile(file, key);
    let saved = null;
    try {
      app.runInTransaction((txApp) => {
        const record = heldBy(txApp, held.user, held.owner, held.generation);
        // The same record, too: the file is stored in this record's folder.
        if (!record || record.id !== before.id) return;
        // Still there (nothing, such as the cleanup's sweep, took it meanwhile): a record
        // never names a missing file, and the archive it replaces is deleted after this.
        if (!fsys.exists(key)) throw new Error("the stored archive file is gone before it was named");
        record.set("archive", file.name);
        setFields(record);
        txApp.saveNoValidate(record);
        saved = record;
      });
    } catch (error) {
      // PocketBase throws after a commit as well, when its after-commit work (deleting
      // the replaced file) fails: the file is deleted only if the record does not name it.
      const named = archiveOf(app, before.id);
      if (named !== null && named !== file.name) deleteQuietly(app, fsys, key);
      throw error;
    }
    if (!saved) deleteQuietly(app, fsys, key);
    return saved;
  } finally {
    fsys.close();
  }
}

/**
 * The largest body the archive upload route reads: what the archive field stores (as
 * PocketBase reckons it for its own record routes) plus 1 MiB for the other fields.
 */
function archiveBodyLimit(app) {
  return app.findCachedCollectionByNameOrId(COLLECTION).fields.getByName("archive").calculateMaxBodySize() + 1024 * 1024;
}

/** The archive file a session record names ("" when the record is gone), or null when that cannot be read. */
function archiveOf(app, recordId) {
  try {
    return app.findRecordById(COLLECTION, recordId).getString("archive");
  } catch (error) {
    return isNoRows(error) ? "" : null;
  }
}

/** Deletes one stored file; false (and a warning in PocketBase's log) when it cannot. */
function deleteQuietly(app, fsys, key) {
  try {
    fsys.delete(key);
    return true;
  } catch (error) {
    app.logger().warn("wavault: could not delete an archive file no record refers to", "key", key, "error", String(error));
    return false;
  }
}

module.exports = {
  archiveBodyLimit,
  claim,
  deleteStale,
  findFirstOrNull,
  heldBy,
  isNoRows,
  leaseFields,
  leaseOf,
  MAX_TTL_MS,
  MAX_RENEWALS,
  renewHeld,
  metadataOf,
  noteResume,
  ownerUrl,
  positiveInt,
  requireFields,
  saveArchiveFenced,
  deleteQuietly,
  storedDate,
  text,
};
