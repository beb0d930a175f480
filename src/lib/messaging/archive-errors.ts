/**
 * The typed refusals of the session archiver. Each leaves the restore target exactly as
 * it was; `code` is stable and maps to an HTTP status in src/lib/http.
 */

/** The input is no wavault archive, is truncated, or fails its checksum. */
export class ArchiveCorruptError extends Error {
  readonly code = "archive_corrupt";
  constructor(readonly reason: string, options?: ErrorOptions) {
    super(`Session archive is corrupt: ${reason}.`, options);
    this.name = "ArchiveCorruptError";
  }
}

/** The archive cannot be decrypted: unknown key id, wrong key, or tampered bytes (GCM tag). */
export class ArchiveDecryptError extends Error {
  readonly code = "archive_decrypt_failed";
  constructor(readonly keyId: string, reason: string, options?: ErrorOptions) {
    super(`Session archive cannot be decrypted (key ${keyId}): ${reason}.`, options);
    this.name = "ArchiveDecryptError";
  }
}

/**
 * No configured key has the archive's key id: this instance lacks that key (missing from
 * its SESSION_ENCRYPTION_OLD_KEYS, say); the archive itself may well be sound.
 */
export class ArchiveKeyMissingError extends ArchiveDecryptError {
  constructor(keyId: string) {
    super(keyId, "no configured key has this id (SESSION_ENCRYPTION_OLD_KEYS?)");
    this.name = "ArchiveKeyMissingError";
  }
}

/** An entry would land outside the target or is not a plain file or directory. */
export class UnsafeArchiveError extends Error {
  readonly code = "archive_unsafe";
  constructor(readonly entryPath: string, readonly reason: string) {
    super(`Session archive entry ${JSON.stringify(entryPath)} refused: ${reason}.`);
    this.name = "UnsafeArchiveError";
  }
}

/** The archive unpacks to more entries or bytes than the configured limits (a bomb). */
export class ArchiveTooLargeError extends Error {
  readonly code = "archive_too_large";
  constructor(readonly limit: "entries" | "bytes", readonly max: number) {
    super(`Session archive exceeds the limit of ${max} ${limit === "bytes" ? "uncompressed bytes" : "entries"}.`);
    this.name = "ArchiveTooLargeError";
  }
}

/** A kept profile file changed while it was archived: the browser was writing. Retry later. */
export class ProfileChangedError extends Error {
  readonly code = "profile_changed";
  constructor(readonly file: string) {
    super(`Profile file ${JSON.stringify(file)} changed while it was archived; the archive was discarded.`);
    this.name = "ProfileChangedError";
  }
}

/** There is nothing to archive: no profile, or none of the files that keep a login. */
export class ProfileEmptyError extends Error {
  readonly code = "profile_empty";
  constructor(readonly sessionDir: string) {
    super(`No WhatsApp Web login data in ${sessionDir}; refusing to archive an empty profile.`);
    this.name = "ProfileEmptyError";
  }
}
