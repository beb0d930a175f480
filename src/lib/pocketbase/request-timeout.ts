import type PocketBase from "pocketbase";

/**
 * How long a PocketBase request may take when its caller set no limit of its own. A
 * PocketBase that stops answering (a hung process, a network that drops packets rather
 * than refusing them) would otherwise hold every request for as long as TCP keeps
 * trying: a quarter of an hour on Linux.
 */
export const POCKETBASE_REQUEST_TIMEOUT_MS = 30_000;

/** How long an archive's upload or download may take (50 MiB at ~170 KB/s). */
export const ARCHIVE_TRANSFER_TIMEOUT_MS = 5 * 60_000;

/**
 * Gives every request of `pb` that has no abort signal of its own one that fires after
 * `timeoutMs`: it then fails with the SDK's error of status 0, which the store turns
 * into PocketBaseUnavailableError. Call it before signing in, so that the SDK's own
 * hooks (the token refresh) run over it.
 */
export function limitRequestTime(pb: PocketBase, timeoutMs = POCKETBASE_REQUEST_TIMEOUT_MS): PocketBase {
  const previous = pb.beforeSend;
  pb.beforeSend = async (url, options) => {
    options.signal ??= AbortSignal.timeout(timeoutMs);
    return previous ? previous(url, options) : { url, options };
  };
  return pb;
}
