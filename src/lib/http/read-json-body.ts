import { ApiError } from "./api-error";

/** The largest request body a route reads: a message is at most 4096 characters. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a JSON request body of at most `maxBytes`, without ever holding more than that.
 * An empty body reads as `{}`.
 * @throws ApiError payload_too_large, unsupported_media_type or invalid_json
 */
export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return {};
  const type = request.headers.get("content-type") ?? "";
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  if (length === 0) return {};
  // A JSON body must say so: a cross-site form cannot send application/json without a preflight.
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError("unsupported_media_type", "Send the request body as application/json.");
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ApiError("invalid_json", "The request body is not valid JSON.");
  }
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError("payload_too_large", `The request body is larger than ${maxBytes} bytes.`);
}
