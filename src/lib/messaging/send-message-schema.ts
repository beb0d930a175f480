import { z } from "zod";

import { RecipientSchema } from "./chat-id";

/** The most characters one text may have (WhatsApp allows more; a SaaS notification needs fewer). */
export const MAX_TEXT_LENGTH = 4096;

/** `POST /api/whatsapp/messages`: `to` becomes the chat id. */
export const SendMessageSchema = z.object({
  to: RecipientSchema,
  text: z.string().min(1, { message: "must not be empty" }).max(MAX_TEXT_LENGTH, { message: `must be at most ${MAX_TEXT_LENGTH} characters` }),
});
