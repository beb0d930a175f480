import wwebjs from "whatsapp-web.js";

import { WHATSAPP_CHROMIUM_ARGS } from "../../browser/chromium-args";
import { settleWithin } from "../../settle-within";

const { Client, LocalAuth } = wwebjs;
export type WaClient = InstanceType<typeof Client>;

export interface WaClientOptions {
  userId: string;
  /** LocalAuth's dataPath: the profile is `<sessionRoot>/session-<userId>`. */
  sessionRoot: string;
  chromePath: string;
  webVersion?: string;
  webCacheDir?: string;
}

/** A whatsapp-web.js client on the user's LocalAuth profile, in the given Chromium. */
export function createWaClient(options: WaClientOptions): WaClient {
  return new Client({
    authStrategy: new LocalAuth({ clientId: options.userId, dataPath: options.sessionRoot }),
    ...(options.webVersion ? { webVersion: options.webVersion } : {}),
    ...(options.webCacheDir ? { webVersionCache: { type: "local" as const, path: options.webCacheDir } } : {}),
    // The process's own SIGTERM handling stops clients gracefully; puppeteer must not kill them first.
    puppeteer: { executablePath: options.chromePath, headless: true, args: WHATSAPP_CHROMIUM_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false },
  });
}

/** How long a browser gets to close before it is killed. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Closes a client's browser; one that is already gone (or half started), or that does
 * not close within `timeoutMs`, is killed.
 */
export async function destroyQuietly(client: WaClient, timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
  try {
    if ((await settleWithin(client.destroy(), timeoutMs, () => "timeout" as const)) === "timeout") throw new Error("the browser did not close in time");
  } catch {
    client.pupBrowser?.process()?.kill("SIGKILL");
  }
}

/** How long a browser still launching is waited for (puppeteer's own launch timeout is 30 s). */
const LAUNCH_WAIT_MS = 30_000;

/**
 * Closes a client's browser (see destroyQuietly), also one `initializing` (its
 * initialize()) is still launching: whatsapp-web.js names the browser only once Chromium
 * is up, so until then there is nothing to close — this waits for it to come up (or
 * for initialize() to end without one), then closes it. Closed, it ends initialize()
 * too, even one waiting on a page that never loads.
 */
export async function destroyLaunched(client: WaClient, initializing: Promise<unknown>, timeoutMs?: number): Promise<void> {
  let over = false;
  const ended = initializing.then(
    () => {},
    () => {},
  );
  const up = (async () => {
    const until = Date.now() + LAUNCH_WAIT_MS;
    while (!over && !client.pupBrowser && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  })();
  await Promise.race([ended, up]);
  over = true;
  await destroyQuietly(client, timeoutMs);
}

/**
 * Whether the phone has scanned and WhatsApp Web is linking (its socket PAIRING or
 * CONNECTED, before the first sync ends): whatsapp-web.js reports nothing until then.
 * Read from the page as the library reads it; false when it cannot be read in 5 s.
 */
export async function linkInProgress(client: WaClient | null): Promise<boolean> {
  const page = client?.pupPage;
  if (!page) return false;
  const read = page
    .evaluate(() => (window as unknown as { require(name: string): { Socket: { state: string } } }).require("WAWebSocketModel").Socket.state)
    .catch(() => "");
  return ["PAIRING", "CONNECTED"].includes(await settleWithin(read, 5_000, () => ""));
}
