// Chromium flags that keep an idle client small and keep it off the network it does
// not need (updates, sync, metrics).
export const WHATSAPP_CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-extensions",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--no-first-run",
  "--no-default-browser-check",
  "--mute-audio",
  "--js-flags=--max-old-space-size=256",
];
