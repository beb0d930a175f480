import wwebjs from "whatsapp-web.js";

import { WHATSAPP_CHROMIUM_ARGS } from "../../browser/chromium-args";

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

/** Closes a client's browser; one that is already gone (or half started) is killed. */
export async function destroyQuietly(client: WaClient): Promise<void> {
  try {
    await client.destroy();
  } catch {
    client.pupBrowser?.process()?.kill("SIGKILL");
  }
}
