import { ApiError } from "./api-error";

/** The request header a client names a send with, so that its retries send nothing twice. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

/**
 * The request's Idempotency-Key, if it has one: 1–255 printable ASCII characters (a
 * UUID, say).
 * @throws ApiError validation_failed for any other value
 */
export function idempotencyKeyOf(request: Request): string | undefined {
  const key = request.headers.get(IDEMPOTENCY_KEY_HEADER);
  if (key === null) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ApiError("validation_failed", "The request is not valid.", { "Idempotency-Key": ["must be 1 to 255 printable ASCII characters, no spaces"] });
  }
  return key;
}
