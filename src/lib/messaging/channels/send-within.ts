import { settleWithin } from "../../settle-within";
import { SendTimedOutError } from "./channel-errors";
import type { WaClient } from "./wa-client";

/**
 * How long a send gets by default: under the 30 s a forwarded request waits for its
 * answer (forward-to-owner.ts), so the caller hears the outcome rather than a 504.
 */
export const SEND_TIMEOUT_MS = 25_000;

const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * Sends `text` to `chatId` and returns the message id.
 * @throws SendTimedOutError once `timeoutMs` have passed without WhatsApp Web's answer
 *   (the send goes on: its `late` outcome); what the send throws
 */
export async function sendWithin(client: WaClient, chatId: string, text: string, timeoutMs: number): Promise<string> {
  const sending = client.sendMessage(chatId, text).then((message) => {
    // whatsapp-web.js answers nothing when the page made no message.
    if (!message) throw new Error("WhatsApp Web returned no message");
    return message.id._serialized;
  });
  const outcome = await settleWithin(sending, timeoutMs, () => TIMED_OUT);
  if (typeof outcome === "string") return outcome;
  sending.catch(() => {}); // whoever takes `late` hears how it ends; unhandled it must not be
  throw new SendTimedOutError(timeoutMs, sending);
}
