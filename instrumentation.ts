// Next.js instrumentation: runs once when the server starts.
export async function register() {
  // Only the Node.js server runs WhatsApp clients (not the Edge runtime). NEXT_RUNTIME
  // is set by Next itself, not configuration, so it is read here directly.
  if (process.env.NEXT_RUNTIME !== "nodejs") return;

  const { getEnv } = await import("./src/env");
  getEnv(); // a bad configuration stops the start here, naming the variable

  const { shutdownWhatsApp } = await import("./src/lib/messaging/whatsapp-runtime");
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      // A final archive of every session before the process goes (deploys, Ctrl-C).
      void shutdownWhatsApp().finally(() => process.exit(0));
    });
  }
}
