// GET /api/health/whatsapp – this instance's clients, the stored sessions, PocketBase; 503 when unhealthy
import { getEnv } from "@/env";
import { withApi } from "@/lib/http/with-api";
import { getWhatsAppHealth } from "@/lib/messaging/whatsapp-health";

export const dynamic = "force-dynamic";

export const GET = withApi(
  async () => {
    const health = await getWhatsAppHealth(getEnv());
    return { json: health, status: health.healthy ? 200 : 503 };
  },
  { auth: "none" },
);
