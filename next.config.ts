import type { NextConfig } from "next";

// PUBLIC_URL (see src/env.ts): behind a reverse proxy that sends its upstream's own Host,
// the sign-in forms' Origin is the public address, which Next's server-action check
// then accepts. (Read here, as Next reads its config: src/env.ts is for the app.)
const publicHost = URL.canParse(process.env.PUBLIC_URL ?? "") ? new URL(process.env.PUBLIC_URL!).host : undefined;

const nextConfig: NextConfig = {
  // whatsapp-web.js drives puppeteer and Chromium from Node: keep them out of the bundle.
  serverExternalPackages: ["whatsapp-web.js", "puppeteer", "puppeteer-core", "tar"],
  poweredByHeader: false,
  ...(publicHost ? { experimental: { serverActions: { allowedOrigins: [publicHost] } } } : {}),
};

export default nextConfig;
