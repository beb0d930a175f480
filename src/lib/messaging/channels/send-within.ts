import { settleWithin } from "../../settle-within";
import type { WaClient } from "./wa-client";

/** How long a send gets by default (an Idempotency-Key's claim counts as under way for longer: IN_PROGRESS_MS). */
export const SEND_TIMEOUT_MS = 60_000;

/**
 * Sends `text` to `chatId` and returns the message id; fails once `timeoutMs` have passed
 * without WhatsApp Web's answer (the send itself goes on, unwatched: it may yet go out).
 */
export async function sendWithin(client: WaClient, chatId: string, text: string, timeoutMs: number): Promise<string> {
  const sending = client.sendMessage(chatId, text);
  sending.catch(() => {}); // one that fails after its time is up goes unheard
  const message = await settleWithin(sending, timeoutMs, () => null);
  if (!message) throw new Error(`no answer from WhatsApp Web within ${timeoutMs / 1000} s`);
  return message.id._serialized;
}
