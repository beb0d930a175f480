// Shared by archive-files.pb.js: the cleanup cron's sweep of archive files no session
// record names.

const { deleteQuietly, isNoRows } = require(`${__hooks}/wavault-leases.js`);

const COLLECTION = "whatsapp_sessions";

/** A file stored for a save is named by its record seconds later: one unnamed for an hour never will be. */
const UNNAMED_GRACE_MS = 60 * 60 * 1000;
/**
 * Files in a folder whose record is gone or names no file wait much longer: after a
 * database restored from an older backup, such a folder may hold the only good archive
 * of a session the backup does not know (yet).
 */
const UNREFERENCED_FOLDER_GRACE_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Deletes up to `limit` files in the sessions' storage folder that their record does not
 * name in any of its file fields: unnamed for over an hour (by PocketBase's clock) in a
 * folder whose record names files that are all there, or for over 30 days in a folder
 * whose record is gone or names none. A folder whose record cannot be read, or names a
 * file that is not there (the database and the storage disagree: a restored backup?), is
 * left alone. Returns how many it deleted and looked at.
 */
function sweepArchiveFiles(app, limit) {
  const collection = app.findCollectionByNameOrId(COLLECTION);
  const fileFields = collection.fields.filter((field) => field.type() === "file").map((field) => field.getName());
  const prefix = collection.id + "/";
  const now = Date.now();
  const fsys = app.newFilesystem();
  let deleted = 0;
  let scanned = 0;
  try {
    const folders = new Map(); // record id → its stored files
    const objects = fsys.list(prefix);
    for (let i = 0; i < objects.length; i++) {
      const parts = objects[i].key.slice(prefix.length).split("/");
      if (parts.length < 2 || !parts[0]) continue;
      const modTime = objects[i].modTime;
      // A storage that reports no modification time: the file counts as new.
      const modifiedMs = modTime.isZero() ? now : modTime.unixMilli();
      if (!folders.has(parts[0])) folders.set(parts[0], []);
      folders.get(parts[0]).push({ key: objects[i].key, name: parts.slice(1).join("/"), modifiedMs });
      scanned++;
    }
    const recordIds = Array.from(folders.keys());
    for (let i = 0; i < recordIds.length && deleted < limit; i++) {
      const files = folders.get(recordIds[i]);
      const named = filesOf(app, recordIds[i], fileFields);
      if (named === null) continue;
      const isNamed = (file) => named.some((name) => file.name === name || file.name.startsWith("thumbs_" + name + "/"));
      if (named.some((name) => !files.some((file) => file.name === name))) {
        app.logger().warn("wavault: a session record names an archive file storage does not hold; its folder is left alone", "record", recordIds[i]);
        continue;
      }
      const graceMs = named.length > 0 ? UNNAMED_GRACE_MS : UNREFERENCED_FOLDER_GRACE_MS;
      for (let j = 0; j < files.length && deleted < limit; j++) {
        if (isNamed(files[j]) || now - files[j].modifiedMs < graceMs) continue;
        if (deleteQuietly(app, fsys, files[j].key)) deleted++;
      }
    }
  } finally {
    fsys.close();
  }
  return { deleted, scanned };
}

/** The file names a session record holds in `fileFields` ([] when the record is gone), or null when it cannot be read. */
function filesOf(app, recordId, fileFields) {
  let record;
  try {
    record = app.findRecordById(COLLECTION, recordId);
  } catch (error) {
    return isNoRows(error) ? [] : null;
  }
  return fileFields.flatMap((field) => record.getStringSlice(field));
}

module.exports = { sweepArchiveFiles };
