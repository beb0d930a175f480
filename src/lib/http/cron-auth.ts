import { equalSecrets } from "../auth/equal-secrets";
import { ApiError } from "./api-error";


/**
 * Checks `Authorization: Bearer <CRON_SECRET>` as Vercel Cron sends it. The comparison
 * takes the same time whatever the guess (both sides hashed to equal length first).
 * @throws ApiError: cron_disabled when no secret is configured, else unauthorized
 */
export function verifyCronRequestOrThrow(request: Request, secret: string | undefined): void {
  if (!secret) throw new ApiError("cron_disabled", "CRON_SECRET is not set on this server.");
  const given = request.headers.get("authorization") ?? "";
  if (!equalSecrets(given, `Bearer ${secret}`)) throw new ApiError("unauthorized", "A valid cron secret is required.");
}
