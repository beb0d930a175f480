import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type PocketBase from "pocketbase";
import type { RecordModel } from "pocketbase";

import { LONG_REQUEST_TIMEOUT_MS } from "../pocketbase/request-timeout";
import { SessionStoreError, toStoreError } from "./session-store-errors";

/**
 * Streams a session record's archive file from PocketBase (the protected file field,
 * with a file token of `pb`'s superuser), chunk by chunk, never all of it in memory.
 * @throws PocketBaseUnavailableError, SessionStoreError (a refused download)
 */
export async function* downloadArchive(pb: PocketBase, record: RecordModel): AsyncGenerator<Buffer> {
  let response: Response;
  try {
    const token = await pb.files.getToken();
    // The whole transfer, body included, within the limit: a stalled download fails, typed.
    response = await fetch(pb.files.getURL(record, record.archive as string, { token }), { signal: AbortSignal.timeout(LONG_REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw toStoreError(error, "download the session archive");
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new SessionStoreError("download the session archive", response.status);
  }
  try {
    for await (const chunk of Readable.fromWeb(response.body as WebReadableStream<Uint8Array>)) yield chunk as Buffer;
  } catch (error) {
    throw toStoreError(error, "download the session archive");
  }
}
