/**
 * For a script that works through many sessions: the first Ctrl-C or SIGTERM aborts the
 * returned signal, so that the script starts nothing new, finishes what is under way and
 * cleans up (scratch files of decrypted archives, the leases it holds) before it exits; a
 * second one exits at once (leases then lapse after their TTL).
 */
export function stopOnSignals(what: string): AbortSignal {
  const controller = new AbortController();
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(name, () => {
      if (controller.signal.aborted) process.exit(130);
      controller.abort();
      console.error(`\n${name}: finishing the ${what} under way, then stopping (again to quit at once)`);
    });
  }
  return controller.signal;
}
