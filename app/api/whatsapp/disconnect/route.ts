// POST /api/whatsapp/disconnect – stop the caller's client; the stored session stays
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const POST = withApi(async ({ user }) => ({ json: await (await getUserSessionService()).disconnect(user.id) }), {
  forwardToOwner: true,
});
