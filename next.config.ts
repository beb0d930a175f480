import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // whatsapp-web.js drives puppeteer and Chromium from Node: keep them out of the bundle.
  serverExternalPackages: ["whatsapp-web.js", "puppeteer", "puppeteer-core", "tar"],
  poweredByHeader: false,
};

export default nextConfig;
