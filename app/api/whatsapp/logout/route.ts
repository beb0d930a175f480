// POST /api/whatsapp/logout – log the caller out of WhatsApp and delete the stored session
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const POST = withApi(async ({ user }) => ({ json: await (await getUserSessionService()).logout(user.id) }), {
  forwardToOwner: true,
});
