// POST /api/whatsapp/connect – start the caller's WhatsApp client (or find the running one)
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const POST = withApi(async ({ user }) => ({
  json: await (await getUserSessionService()).connect(user.id),
  status: 202,
}), {
  forwardToOwner: true,
  // No room here (or shutting down): an instance with room starts it (for a new link, room for a QR wait).
  forwardWhenFull: async (user) => (await getUserSessionService()).peersWithRoomFor(user.id),
});
