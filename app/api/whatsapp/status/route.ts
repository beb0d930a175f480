// GET /api/whatsapp/status – the caller's session: status, QR while it waits for a scan, the stored archive
// (from the instance running the session when it answers: only it has the live status and the QR)
import { withApi } from "@/lib/http/with-api";
import { getUserSessionService } from "@/lib/messaging/user-session-service";

export const dynamic = "force-dynamic";

export const GET = withApi(async ({ user, readFromOwner }) => {
  const { view, ownerUrl } = await (await getUserSessionService()).statusAndOwner(user.id);
  return (ownerUrl ? await readFromOwner(ownerUrl) : null) ?? { json: view };
});
