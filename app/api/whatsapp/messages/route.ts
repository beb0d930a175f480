// POST /api/whatsapp/messages – send a text from the caller's WhatsApp (an Idempotency-Key makes retries safe)
import { idempotencyKeyOf } from "@/lib/http/idempotency-key";
import { withApi } from "@/lib/http/with-api";
import { SendMessageSchema } from "@/lib/messaging/send-message-schema";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const POST = withApi(
  async ({ user, body, request }) => ({ json: await (await getUserSessionService()).sendText(user.id, body.to, body.text, idempotencyKeyOf(request)) }),
  { body: SendMessageSchema, forwardToOwner: true },
);
