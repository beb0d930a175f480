import type { NextConfig } from "next";

// PUBLIC_URL (see src/env.ts): behind a reverse proxy that sends its upstream's own Host,
// the sign-in forms' Origin is the public address, which Next's server-action check
// then accepts. (Read here, as Next reads its config: src/env.ts is for the app.)
const publicHost = URL.canParse(process.env.PUBLIC_URL ?? "") ? new URL(process.env.PUBLIC_URL!).host : undefined;

// Every answer: no page may be framed by another site, a sibling subdomain included (its
// frame would carry the SameSite=Lax cookie, and a click in it would pass the CSRF check
// as same-origin); no content-type sniffing; no full URLs in Referer to other origins.
const SECURITY_HEADERS = [
  { key: "Content-Security-Policy", value: "frame-ancestors 'none'" },
  { key: "X-Frame-Options", value: "DENY" },
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
];

const nextConfig: NextConfig = {
  async headers() {
    return [{ source: "/:path*", headers: SECURITY_HEADERS }];
  },
  // whatsapp-web.js drives puppeteer and Chromium from Node: keep them out of the bundle.
  serverExternalPackages: ["whatsapp-web.js", "puppeteer", "puppeteer-core", "tar"],
  poweredByHeader: false,
  ...(publicHost ? { experimental: { serverActions: { allowedOrigins: [publicHost] } } } : {}),
};

export default nextConfig;
