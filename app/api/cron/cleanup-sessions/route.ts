// GET /api/cron/cleanup-sessions – Vercel Cron: delete long-inactive sessions and old events, stop stale clients
import { getEnv } from "@/env";
import { verifyCronRequestOrThrow } from "@/lib/http/cron-auth";
import { withApi } from "@/lib/http/with-api";
import { runSessionCleanup } from "@/lib/messaging/session-cleanup";
import { getWhatsAppRuntime } from "@/lib/messaging/whatsapp-runtime";

export const dynamic = "force-dynamic";

export const GET = withApi(
  async ({ request }) => {
    const env = getEnv();
    verifyCronRequestOrThrow(request, env.CRON_SECRET);
    const result = await runSessionCleanup(await getWhatsAppRuntime(), {
      sessionDays: env.SESSION_RETENTION_DAYS,
      eventDays: env.SESSION_EVENTS_RETENTION_DAYS,
    });
    return { json: { success: true, ...result } };
  },
  { auth: "none" },
);
