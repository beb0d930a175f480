/**
 * The closed table from an error's `code` to the HTTP status and the message a caller
 * sees. A code not listed here is an internal failure: a generic 500, and the real
 * message goes only to the log.
 */
export const ERROR_STATUS = {
  invalid_json: { status: 400, message: "The request body is not valid JSON." },
  unauthorized: { status: 401, message: "A valid user token is required." },
  forbidden: { status: 403, message: "You may not do that." },
  not_found: { status: 404, message: "Not found." },
  leased_elsewhere: { status: 409, message: "This WhatsApp session is running on another server instance." },
  not_ready: { status: 409, message: "WhatsApp is not connected and ready for this account." },
  idempotency_key_reused: { status: 409, message: "This Idempotency-Key was used for another message." },
  idempotency_key_in_progress: { status: 409, message: "A send under this Idempotency-Key is under way; retry shortly to get its outcome." },
  idempotency_key_outcome_unknown: {
    status: 409,
    message: "A send under this Idempotency-Key started a while ago and its outcome was never recorded; it may have gone out. Check before sending it again under a new key.",
  },
  payload_too_large: { status: 413, message: "The request body is too large." },
  unsupported_media_type: { status: 415, message: "Send the request body as application/json." },
  validation_failed: { status: 422, message: "The request is not valid." },
  send_failed: { status: 502, message: "WhatsApp did not accept the message (is the number on WhatsApp?)." },
  forward_failed: { status: 504, message: "The server instance running this WhatsApp session did not answer." },
  send_timeout: {
    status: 504,
    message: "WhatsApp Web did not answer the send in time; the message may yet go out. Retry with the same Idempotency-Key to learn its outcome.",
  },
  connection_limit: { status: 503, message: "The server has no room for another WhatsApp connection right now." },
  shutting_down: { status: 503, message: "This server instance is shutting down; try again shortly." },
  browser_not_found: { status: 503, message: "This server instance cannot run WhatsApp clients (it has no browser)." },
  local_disk_failed: { status: 503, message: "This server instance cannot write to its disk right now; try again shortly." },
  pocketbase_unavailable: { status: 503, message: "The session database is unreachable; try again shortly." },
  pocketbase_service_auth_failed: { status: 503, message: "The session database is unreachable; try again shortly." },
  cron_disabled: { status: 503, message: "CRON_SECRET is not set on this server." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const INTERNAL_ERROR = { code: "internal_error", status: 500, message: "Something went wrong on our side." } as const;

/** The public code, status and message for any thrown value. */
export function describeError(error: unknown): { code: string; status: number; message: string } {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && Object.hasOwn(ERROR_STATUS, code)) {
    const entry = ERROR_STATUS[code as ErrorCode];
    return { code, status: entry.status, message: entry.message };
  }
  return INTERNAL_ERROR;
}
