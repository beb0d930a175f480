import { z } from "zod";

// A WhatsApp chat id: a user (…@c.us), a group (…@g.us) or a linked id (…@lid).
const CHAT_ID = /^\d{5,20}(-\d{1,20})?@(c\.us|g\.us|lid)$/;
// A phone number in international format: a country code and the number, 7–15 digits
// (E.164), optionally with a leading + and spaces, dots, dashes or parentheses.
const PHONE = /^\+?[\d\s().-]+$/;

/** The chat id a message goes to: a chat id as it is, a phone number as `<digits>@c.us`; null when neither. */
export function toChatId(to: string): string | null {
  const value = to.trim();
  if (CHAT_ID.test(value)) return value;
  if (!PHONE.test(value)) return null;
  const digits = value.replace(/\D/g, "");
  return digits.length >= 7 && digits.length <= 15 && !digits.startsWith("0") ? `${digits}@c.us` : null;
}

/** `to`: a phone number in international format or a chat id, turned into the chat id. */
export const RecipientSchema = z.string().transform((to, context) => {
  const chatId = toChatId(to);
  if (!chatId) {
    context.addIssue({ code: "custom", message: "must be a phone number in international format (+4915112345678) or a chat id (…@c.us, …@g.us)" });
    return z.NEVER;
  }
  return chatId;
});
