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

/**
 * The local disk failed while a profile was read, an archive written or a restore
 * unpacked (full, or another I/O error): the stored session is untouched, and so is
 * the restore's target.
 */
export class LocalDiskError extends Error {
  readonly code = "local_disk_failed";
  constructor(readonly action: string, readonly errno: string, options?: ErrorOptions) {
    super(`Could not ${action}: the local disk failed (${errno === "ENOSPC" ? "ENOSPC: disk full" : errno}).`, options);
    this.name = "LocalDiskError";
  }
}

/** `error` as a LocalDiskError when it is a filesystem call's failure (it has a syscall), else `error` itself. */
export function asLocalDiskError(error: unknown, action: string): unknown {
  const { syscall, errno, code } = (error ?? {}) as NodeJS.ErrnoException;
  if (!(error instanceof Error) || typeof syscall !== "string") return error;
  // node-tar rewrites the code of an error it is aborted with; errno (negative) stays.
  const name = typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : errno === -28 ? "ENOSPC" : String(code ?? errno);
  return new LocalDiskError(action, name, { cause: error });
}
