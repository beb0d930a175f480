/** The operator page's sign-in (a status token or a superuser token). */
export const OPERATOR_COOKIE = "wavault_operator";

/** The cookie's lifetime when a token says none (PocketBase's users tokens say theirs: see tokenLifetimeSeconds). */
const TOKEN_MAX_AGE_SECONDS = 7 * 24 * 60 * 60;

/**
 * How long a PocketBase token has left, from its `exp` (read, not verified: it only
 * decides how long the browser keeps the cookie, which then lives no longer than the
 * token); TOKEN_MAX_AGE_SECONDS when it names none.
 */
export function tokenLifetimeSeconds(token: string, now = Date.now()): number {
  try {
    const { exp } = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    if (typeof exp === "number") return Math.max(0, Math.floor(exp - now / 1000));
  } catch {
    // not a JWT: the default below
  }
  return TOKEN_MAX_AGE_SECONDS;
}

/** The token cookie's name where it is not Secure. */
export const BARE_COOKIE = "wavault_token";

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/** What decides the cookies besides a request's Host: the configuration's NODE_ENV and PUBLIC_URL. */
export interface CookieSite {
  production: boolean;
  /** PUBLIC_URL: where users reach the app. Set, it alone decides Secure. */
  publicUrl?: string;
}

/** The cookie site of a configuration. */
export function cookieSiteOf(env: { NODE_ENV: string; PUBLIC_URL?: string }): CookieSite {
  return { production: env.NODE_ENV === "production", publicUrl: env.PUBLIC_URL };
}

/**
 * Secure in production when PUBLIC_URL is https; without PUBLIC_URL, except on a
 * loopback host, where a browser may drop a Secure cookie sent over plain http (a local
 * `next start`). PUBLIC_URL makes it independent of the Host a reverse proxy sends.
 */
function isSecure(host: string | null, site: CookieSite): boolean {
  if (!site.production) return false;
  if (site.publicUrl) return new URL(site.publicUrl).protocol === "https:";
  return !LOOPBACK.test(host ?? "");
}

/**
 * The name of the dashboard's token cookie (the API reads it too) for requests to
 * `host`: `__Host-wavault_token` wherever it is Secure. A browser accepts a cookie of
 * that name only with Secure, `Path=/` and no Domain, so nobody who can set cookies for
 * a parent domain (a sibling subdomain, or a plain-http response on the way) can plant
 * their own token in a user's browser — and have the user link their WhatsApp into the
 * planter's account. Elsewhere (development, a loopback host, an http PUBLIC_URL) it is
 * `wavault_token`.
 */
export function authCookieName(host: string | null, site: CookieSite): string {
  return isSecure(host, site) ? "__Host-wavault_token" : BARE_COOKIE;
}

/** httpOnly (no script reads it), SameSite=Lax (cross-site POSTs never carry it), `Path=/`, Secure as above. */
export function authCookieOptions(host: string | null, site: CookieSite, maxAge = TOKEN_MAX_AGE_SECONDS) {
  return {
    httpOnly: true,
    sameSite: "lax" as const,
    secure: isSecure(host, site),
    path: "/",
    maxAge,
  };
}
