/** The dashboard keeps the user's PocketBase token in this cookie (read by the API too). */
export const AUTH_COOKIE = "wavault_token";
/** The operator page's sign-in (a status token or a superuser token). */
export const OPERATOR_COOKIE = "wavault_operator";

/** PocketBase's default lifetime of a users token; the cookie lives no longer. */
const TOKEN_MAX_AGE_SECONDS = 7 * 24 * 60 * 60;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * httpOnly (no script reads it), SameSite=Lax (cross-site POSTs never carry it), and
 * Secure in production — except on a loopback host, where a browser may drop a Secure
 * cookie sent over plain http (a local `next start`).
 */
export function authCookieOptions(host: string | null, production: boolean, maxAge = TOKEN_MAX_AGE_SECONDS) {
  return {
    httpOnly: true,
    sameSite: "lax" as const,
    secure: production && !LOOPBACK.test(host ?? ""),
    path: "/",
    maxAge,
  };
}
