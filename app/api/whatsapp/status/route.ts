// GET /api/whatsapp/status – the caller's session: status, QR while it waits for a scan, the stored archive
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const dynamic = "force-dynamic";

export const GET = withApi(async ({ user }) => ({ json: await (await getUserSessionService()).status(user.id) }));
