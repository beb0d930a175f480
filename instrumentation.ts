// Next.js instrumentation: runs once when the server starts.
export async function register() {
  // Only the Node.js server runs WhatsApp clients (not the Edge runtime). NEXT_RUNTIME
  // is set by Next itself, not configuration, so it is read here directly.
  if (process.env.NEXT_RUNTIME === "nodejs") await import("./instrumentation-node");
}
