import type wwebjs from "whatsapp-web.js";

import { log } from "../../log";

/**
 * whatsapp-web.js re-injects its scripts after every navigation of the page (the reload
 * after a LOGOUT, for one) from an event handler that catches nothing: once the channel
 * closes the browser, that re-inject rejects and nobody handles it, which would end the
 * process. Once `ending()` is true such a failure is expected and only logged; before,
 * it propagates as before.
 */
export function guardReinjection(client: wwebjs.Client, userId: string, ending: () => boolean): void {
  const target = client as unknown as { inject: () => Promise<void> };
  const inject = target.inject.bind(client);
  target.inject = async () => {
    try {
      await inject();
    } catch (error) {
      if (!ending()) throw error;
      log("info", "WhatsApp page re-injection ended with the browser", { userId });
    }
  };
}
