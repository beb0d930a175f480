import type { SessionStatus } from "@/lib/messaging/database-session-store";

/** How each state of the session machine reads on the dashboard, and its colour. */
export const STATUS_TEXT: Record<SessionStatus, { label: string; detail: string; tone: "idle" | "busy" | "action" | "ok" | "bad" }> = {
  created: { label: "Starting", detail: "Preparing your WhatsApp connection…", tone: "busy" },
  initializing: { label: "Starting", detail: "Restoring your session and opening WhatsApp Web…", tone: "busy" },
  qr_ready: { label: "Scan the QR code", detail: "Link this service as a device of your WhatsApp.", tone: "action" },
  authenticating: { label: "Linking", detail: "WhatsApp accepted the link; loading your account…", tone: "busy" },
  ready: { label: "Ready", detail: "Connected: messages can be sent and received.", tone: "ok" },
  disconnected: { label: "Not connected", detail: "Connect to start WhatsApp for your account.", tone: "idle" },
  failed: { label: "Failed", detail: "WhatsApp could not start. Try connecting again.", tone: "bad" },
};
