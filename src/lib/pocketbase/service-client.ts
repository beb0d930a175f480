import PocketBase from "pocketbase";

import { getEnv } from "../../env";
import { limitRequestTime } from "./request-timeout";

export interface ServiceClientConfig {
  url: string;
  email: string;
  password: string;
  /** How long a request with no limit of its own may take (default POCKETBASE_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
}

/** The backend could not sign in to PocketBase as its superuser. */
export class ServiceAuthError extends Error {
  readonly code = "pocketbase_service_auth_failed";
  constructor(readonly url: string, options?: ErrorOptions) {
    super(`Could not authenticate as the PocketBase superuser at ${url}.`, options);
    this.name = "ServiceAuthError";
  }
}

// Re-authenticate when the token has less than this left (PocketBase's default is 1 day).
const REFRESH_THRESHOLD_SECONDS = 30 * 60;

/**
 * A new PocketBase client signed in as the superuser. The SDK's auto-refresh hook
 * renews the token before it expires and signs in again with the password when a
 * refresh fails, so the client keeps working on its own. A request with no abort
 * signal of its own gives up after 30 s, the sign-in too, and none cancels another
 * (see limitRequestTime).
 * @throws ServiceAuthError when PocketBase is unreachable or refuses the credentials.
 */
export async function createServiceClient(config: ServiceClientConfig): Promise<PocketBase> {
  const pb = limitRequestTime(new PocketBase(config.url), config.requestTimeoutMs);
  try {
    await pb.collection("_superusers").authWithPassword(config.email, config.password, {
      autoRefreshThreshold: REFRESH_THRESHOLD_SECONDS,
    });
  } catch (error) {
    throw new ServiceAuthError(config.url, { cause: error });
  }
  return pb;
}

// One client per process, kept on globalThis so dev hot reload does not sign in again.
const holder = globalThis as typeof globalThis & { __wavaultServiceClient?: Promise<PocketBase> };

/**
 * The process's superuser client, created from the configuration on first use.
 * @throws ServiceAuthError (and the next call tries again).
 */
export function getServiceClient(): Promise<PocketBase> {
  if (!holder.__wavaultServiceClient) {
    const env = getEnv();
    const pending = createServiceClient({
      url: env.POCKETBASE_URL,
      email: env.POCKETBASE_ADMIN_EMAIL,
      password: env.POCKETBASE_ADMIN_PASSWORD,
    });
    holder.__wavaultServiceClient = pending;
    pending.catch(() => {
      if (holder.__wavaultServiceClient === pending) holder.__wavaultServiceClient = undefined;
    });
  }
  return holder.__wavaultServiceClient;
}

/**
 * Headers that make a sign-in the app makes for someone (the dashboard's, /status's) the
 * app's own: PocketBase never rate-limits a superuser's requests (see the migration
 * 1739740000_rate_limit_password_sign_ins.js), and the app throttles these itself
 * (sign-in-throttle.ts), so its users do not share one client address's limit. None
 * when the backend cannot sign in: PocketBase then limits the sign-in as anyone's.
 */
export async function serviceSignInHeaders(): Promise<Record<string, string>> {
  try {
    const token = (await getServiceClient()).authStore.token;
    return token ? { Authorization: token } : {};
  } catch {
    return {};
  }
}
