/** A repeat within this long is the same keypress: a terminal's Ctrl-C reaches both npm and its child, and npm passes it on once more. */
const SAME_KEYPRESS_MS = 1_000;

/**
 * For a script that works through many sessions: the first Ctrl-C or SIGTERM aborts the
 * returned signal, so that the script starts nothing new, finishes what is under way and
 * cleans up (scratch files of decrypted archives, the leases it holds) before it exits; a
 * second one, a second or more later, exits at once (leases then lapse after their TTL).
 */
export function stopOnSignals(what: string): AbortSignal {
  const controller = new AbortController();
  let firstAt = 0;
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(name, () => {
      if (controller.signal.aborted) {
        if (Date.now() - firstAt >= SAME_KEYPRESS_MS) process.exit(130);
        return;
      }
      firstAt = Date.now();
      controller.abort();
      console.error(`\n${name}: finishing the ${what} under way, then stopping (again to quit at once)`);
    });
  }
  return controller.signal;
}
