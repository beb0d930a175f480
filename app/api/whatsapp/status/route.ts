// GET /api/whatsapp/status – the caller's session: status, QR while it waits for a scan, the stored archive
// (answered by the instance running the session when it can: only it has the live status and the QR)
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const dynamic = "force-dynamic";

export const GET = withApi(async ({ user, forward }) => {
  const { view, ownerUrl } = await (await getUserSessionService()).statusAndOwner(user.id);
  return (ownerUrl ? await forward(ownerUrl) : null) ?? { json: view };
});
