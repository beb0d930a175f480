// GET /api/whatsapp/events – the caller's last 20 session events, newest first
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const dynamic = "force-dynamic";

export const GET = withApi(async ({ user }) => ({ json: { events: await (await getUserSessionService()).events(user.id) } }));
