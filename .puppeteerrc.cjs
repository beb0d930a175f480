// whatsapp-web.js depends on puppeteer. wavault runs a system Chromium (see
// src/lib/browser/find-chromium.ts), so npm install never downloads a browser.
/** @type {import("puppeteer").Configuration} */
module.exports = {
  skipDownload: true,
  chrome: { skipDownload: true },
  "chrome-headless-shell": { skipDownload: true },
  firefox: { skipDownload: true },
};
