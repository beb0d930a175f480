// POST /api/whatsapp/messages – send a text from the caller's WhatsApp
import { withApi } from "@/lib/http/with-api";
import { SendMessageSchema } from "@/lib/messaging/send-message-schema";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const POST = withApi(
  async ({ user, body }) => ({ json: await (await getUserSessionService()).sendText(user.id, body.to, body.text) }),
  { body: SendMessageSchema, forwardToOwner: true },
);
