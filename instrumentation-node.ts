// The Node.js half of instrumentation.ts (kept apart so the Edge build never sees it).
import { getEnv } from "./src/env";
import { shutdownWhatsApp, startDiskHousekeeping, startSessionResume } from "./src/lib/messaging/whatsapp-runtime";

const env = getEnv(); // a bad configuration stops the start here, naming the variable

// Sessions that were running before this start (a deploy, a restart, another
// instance that died) come back by themselves.
startSessionResume(env);

// What a process that died mid-archive or mid-restore left on disk (a restore's scratch
// holds the login keys in plain), and week-old profiles the database can bring back, go:
// now and every hour.
startDiskHousekeeping(env);

// A final archive of every session before the process goes (deploys, Ctrl-C, a closed
// terminal). Once:
// the same signal often comes twice (a terminal's Ctrl-C reaches every process of the
// job, and `next dev` passes it on too), and a second one must not end the process
// mid-stop, as it would with no listener left.
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void shutdownWhatsApp().finally(() => process.exit(0));
  });
}
