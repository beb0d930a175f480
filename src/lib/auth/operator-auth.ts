import { createHash, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import PocketBase from "pocketbase";

import { toStoreError } from "../messaging/session-store-errors";
import { isPocketBaseError } from "../pocketbase/pocketbase-error";
import { limitRequestTime } from "../pocketbase/request-timeout";
import { equalSecrets } from "./equal-secrets";
import { InvalidCredentialsError } from "./user-accounts";

/** How long an operator sign-in lasts. */
export const OPERATOR_SESSION_MS = 12 * 60 * 60 * 1000;

const digest = (value: string) => createHash("sha256").update(value).digest();
/** Which STATUS_TOKEN a sign-in used (a rotated token ends it), without the token itself. */
const tokenTag = (token: string) => digest(`wavault status token\n${token}`).subarray(0, 12).toString("base64url");

interface OperatorClaims {
  kind: "token" | "superuser";
  /** The status token's tag, or the superuser's email. */
  who: string;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** A superuser sign-in: the record's id and its `updated` then (a new password changes it). */
  sid?: string;
  ver?: string;
}

/**
 * A superuser's `updated` now, or null when the record is gone (PocketBase asked with the
 * backend's own superuser client; a failure to ask throws).
 */
export type SuperuserVersion = (id: string) => Promise<string | null>;

/** The key the operator cookie is signed with, derived from SESSION_ENCRYPTION_KEY (never the key itself). */
export function operatorSigningKey(sessionEncryptionKey: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(sessionEncryptionKey, "base64"), "", "wavault operator cookie", 32));
}

function sign(payload: string, key: Buffer): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}

/**
 * Signs an operator in to /status, with STATUS_TOKEN or as a PocketBase superuser, and
 * returns the cookie value: signed, expiring claims — no token or password in it.
 * @throws InvalidCredentialsError, PocketBaseUnavailableError
 */
export async function signInOperator(
  // headers: serviceSignInHeaders(), for the superuser sign-in (see there).
  options: { url: string; statusToken: string | undefined; signingKey: Buffer; headers?: Record<string, string> },
  input: { token?: string; email?: string; password?: string },
): Promise<string> {
  let claims: OperatorClaims;
  if (input.token) {
    if (!options.statusToken || !equalSecrets(input.token, options.statusToken)) throw new InvalidCredentialsError();
    claims = { kind: "token", who: tokenTag(options.statusToken), exp: Date.now() + OPERATOR_SESSION_MS };
  } else {
    try {
      const { record } = await limitRequestTime(new PocketBase(options.url)).collection("_superusers").authWithPassword(input.email ?? "", input.password ?? "", { headers: options.headers });
      claims = { kind: "superuser", who: String(record.email), exp: Date.now() + OPERATOR_SESSION_MS, sid: record.id, ver: String(record.updated) };
    } catch (error) {
      if (isPocketBaseError(error, 400)) throw new InvalidCredentialsError();
      throw toStoreError(error, "sign in as a superuser");
    }
  }
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${payload}.${sign(payload, options.signingKey)}`;
}

/**
 * Whether an operator cookie still opens /status: its signature holds, it has not
 * expired, and it is still good for what signed it in — a token sign-in while
 * STATUS_TOKEN is the token it was made with, a superuser's while that superuser exists
 * and has not been changed since (a new password, or deleting the superuser, ends it at
 * once; asked of PocketBase on every visit, so while PocketBase cannot be asked only the
 * status token opens the page).
 */
export async function isOperator(
  cookie: string | undefined,
  options: { statusToken: string | undefined; signingKey: Buffer; superuserVersion: SuperuserVersion },
): Promise<boolean> {
  const claims = verifiedClaims(cookie, options.signingKey);
  if (!claims || !(claims.exp > Date.now())) return false;
  if (claims.kind === "token") return Boolean(options.statusToken) && claims.who === tokenTag(options.statusToken!);
  if (claims.kind !== "superuser" || !claims.sid || !claims.ver) return false;
  try {
    return (await options.superuserVersion(claims.sid)) === claims.ver;
  } catch {
    return false;
  }
}

/** The claims of a cookie whose signature holds, else null. */
function verifiedClaims(cookie: string | undefined, signingKey: Buffer): OperatorClaims | null {
  const [payload, signature] = (cookie ?? "").split(".");
  if (!payload || !signature) return null;
  const expected = Buffer.from(sign(payload, signingKey));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as OperatorClaims;
  } catch {
    return null;
  }
}

/** SuperuserVersion through a superuser client. */
export function superuserVersionVia(pb: () => Promise<PocketBase>): SuperuserVersion {
  return async (id) => {
    try {
      const record = await (await pb()).collection("_superusers").getOne(id, { fields: "updated", requestKey: null });
      return String(record.updated);
    } catch (error) {
      if (isPocketBaseError(error, 404)) return null;
      throw error;
    }
  };
}
