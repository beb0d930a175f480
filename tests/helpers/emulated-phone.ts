import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

type Emulator = Record<string, (...args: unknown[]) => unknown>;

/**
 * The phone, for a client running in another process (a `next start` server): it
 * reaches the emulator page in that client's Chromium over the DevTools port the
 * browser announces in its profile (`DevToolsActivePort`), as a phone reaches
 * WhatsApp's servers — from outside the app.
 */
export class EmulatedPhone {
  readonly #browser: Browser;
  readonly #page: Page;

  private constructor(browser: Browser, page: Page) {
    this.#browser = browser;
    this.#page = page;
  }

  /** Attaches to the browser using `profileDir` (waits for it to start, up to `timeoutMs`). */
  static async attach(profileDir: string, timeoutMs = 30_000): Promise<EmulatedPhone> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const [port, wsPath] = (await readFile(path.join(profileDir, "DevToolsActivePort"), "utf8")).trim().split("\n");
        const browser = await puppeteer.connect({ browserWSEndpoint: `ws://127.0.0.1:${port}${wsPath}`, defaultViewport: null });
        for (const page of await browser.pages()) {
          if (await page.evaluate(() => "__waEmulator" in window).catch(() => false)) return new EmulatedPhone(browser, page);
        }
        await browser.disconnect();
      } catch {
        // the browser or its page is not up yet
      }
      if (Date.now() > deadline) throw new Error(`no WhatsApp emulator page in the browser of ${profileDir}`);
      await delay(200);
    }
  }

  /** Scans the QR: links this phone to the client. */
  pair(): Promise<unknown> {
    return this.#call("pair");
  }

  /** Every QR ref the emulated WhatsApp Web has offered (they rotate). */
  refsShown(): Promise<string[]> {
    return this.#call("refsShown") as Promise<string[]>;
  }

  /** The texts the client has sent through the emulated WhatsApp. */
  sentMessages(): Promise<{ id: string; to: string; body: string }[]> {
    return this.#call("sentMessages") as Promise<{ id: string; to: string; body: string }[]>;
  }

  /** Lets go of the browser without closing it. */
  async detach(): Promise<void> {
    await this.#browser.disconnect();
  }

  #call(action: string): Promise<unknown> {
    return this.#page.evaluate((what) => (window as unknown as { __waEmulator: Emulator }).__waEmulator[what]!(), action);
  }
}
