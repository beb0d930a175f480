import { isPocketBaseError } from "../pocketbase/pocketbase-error";

/** PocketBase could not be reached (network error, connection refused, aborted upload). */
export class PocketBaseUnavailableError extends Error {
  readonly code = "pocketbase_unavailable";
  constructor(readonly action: string, options?: ErrorOptions) {
    super(`PocketBase is unreachable (${action}).`, options);
    this.name = "PocketBaseUnavailableError";
  }
}

/** PocketBase answered a session-store request with an error. */
export class SessionStoreError extends Error {
  readonly code = "session_store_failed";
  constructor(readonly action: string, readonly status: number, options?: ErrorOptions) {
    super(`Session store could not ${action} (PocketBase status ${status}).`, options);
    this.name = "SessionStoreError";
  }
}

/**
 * An archive larger than PocketBase stores (the archive file field's limit, set from
 * SESSION_ARCHIVE_MAX_BYTES): it is never uploaded, and the last stored archive stays.
 */
export class ArchiveOverStoreLimitError extends Error {
  readonly code = "archive_over_store_limit";
  constructor(readonly sizeBytes: number, readonly maxBytes: number) {
    super(`The session archive (${sizeBytes} bytes) is larger than PocketBase stores (${maxBytes} bytes: the archive field's limit, SESSION_ARCHIVE_MAX_BYTES); the last stored archive stays.`);
    this.name = "ArchiveOverStoreLimitError";
  }
}

/** Wraps a PocketBase SDK failure in the store's typed errors, keeping it as the cause. */
export function toStoreError(error: unknown, action: string): Error {
  if (isPocketBaseError(error)) {
    return error.status === 0
      ? new PocketBaseUnavailableError(action, { cause: error })
      : new SessionStoreError(action, error.status, { cause: error });
  }
  if (error instanceof TypeError) return new PocketBaseUnavailableError(action, { cause: error }); // fetch failed
  return error instanceof Error ? error : new Error(String(error));
}

/** True for PocketBase's "not found" answer. */
export function isNotFound(error: unknown): boolean {
  return isPocketBaseError(error, 404);
}

/** A typed error's stable `code` (for logs), or "unknown". */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "unknown";
}
