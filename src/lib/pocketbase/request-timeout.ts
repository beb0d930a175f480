import type PocketBase from "pocketbase";

/**
 * How long a PocketBase request may take when its caller set no limit of its own. A
 * PocketBase that stops answering (a hung process, a network that drops packets rather
 * than refusing them) would otherwise hold every request for as long as TCP keeps
 * trying: a quarter of an hour on Linux.
 */
export const POCKETBASE_REQUEST_TIMEOUT_MS = 30_000;

/**
 * How long a request whose work grows with the data may take: an archive's upload or
 * download (50 MiB at ~170 KB/s), the cron's cleanup batches, event prune and file sweep.
 */
export const LONG_REQUEST_TIMEOUT_MS = 5 * 60_000;

/**
 * Gives every request of `pb` that has no abort signal of its own one that fires after
 * `timeoutMs`: it then fails with the SDK's error of status 0, which the store turns
 * into PocketBaseUnavailableError. Also turns the SDK's auto-cancellation off (it would
 * give every request a signal of its own first, without a limit): a server issues
 * concurrent identical requests on purpose. Call it before signing in, so that the
 * SDK's own hooks (the token refresh) run over it.
 */
export function limitRequestTime(pb: PocketBase, timeoutMs = POCKETBASE_REQUEST_TIMEOUT_MS): PocketBase {
  pb.autoCancellation(false);
  const previous = pb.beforeSend;
  pb.beforeSend = async (url, options) => {
    options.signal ??= AbortSignal.timeout(timeoutMs);
    return previous ? previous(url, options) : { url, options };
  };
  return pb;
}
