// The Node.js half of instrumentation.ts (kept apart so the Edge build never sees it).
import { getEnv } from "./src/env";
import { shutdownWhatsApp, startSessionResume } from "./src/lib/messaging/whatsapp-runtime";

const env = getEnv(); // a bad configuration stops the start here, naming the variable

// Sessions that were running before this start (a deploy, a restart, another
// instance that died) come back by themselves.
startSessionResume(env);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    // A final archive of every session before the process goes (deploys, Ctrl-C).
    void shutdownWhatsApp().finally(() => process.exit(0));
  });
}
