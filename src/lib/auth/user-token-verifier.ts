import { createHash } from "node:crypto";
import type { RecordModel } from "pocketbase";

import { authenticateUserOrThrow, UnauthorizedError } from "../pocketbase/user-client";

/**
 * How long a token PocketBase accepted is taken on trust. Every API call and every
 * dashboard poll (one every 1.5 s per open tab) would otherwise cost PocketBase an
 * auth refresh. The price: a user deleted, or whose password changed, keeps access
 * to this instance for at most this long.
 */
export const VERIFIED_TOKEN_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;

interface Verified {
  user: RecordModel;
  until: number;
}

// Keyed by the token's hash: no bearer token is kept in memory longer than a request.
// On globalThis: route handlers, pages and server actions may each get their own copy
// of this module, and a revocation in one must reach the others.
const holder = globalThis as typeof globalThis & {
  __wavaultVerifiedTokens?: Map<string, Verified>;
  __wavaultRevokedAt?: Map<string, number>;
};
const verified = (holder.__wavaultVerifiedTokens ??= new Map<string, Verified>());
/** When each user's tokens were last revoked here (performance.now()), kept as long as a check can take. */
const revokedAt = (holder.__wavaultRevokedAt ??= new Map<string, number>());
const keyOf = (token: string) => createHash("sha256").update(token).digest("base64url");

/** The token's own expiry (ms), read from its payload without checking it (PocketBase has). */
function expiryOf(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" ? payload.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/** What a token can be at all: a JWT is base64url parts joined by dots. */
const TOKEN_SHAPE = /^[\w.-]+$/;

/**
 * The user a PocketBase token belongs to: verified with PocketBase, then remembered for
 * VERIFIED_TOKEN_TTL_MS (never past the token's own expiry).
 * @throws UnauthorizedError when PocketBase does not accept it, or it is no token at all
 *   (a character no header may carry would fail the request to PocketBase, and that
 *   would read as PocketBase being down); other failures as they are
 */
export async function verifyUserTokenOrThrow(url: string, token: string): Promise<RecordModel> {
  if (!TOKEN_SHAPE.test(token)) throw new UnauthorizedError();
  const key = keyOf(token);
  const hit = verified.get(key);
  if (hit && hit.until > Date.now()) return hit.user;
  verified.delete(key);
  const asked = performance.now();
  const { user } = await authenticateUserOrThrow(url, token);
  // Revoked while PocketBase was asked: its "yes" may predate the revocation. Ask again.
  if ((revokedAt.get(user.id) ?? -Infinity) >= asked) return verifyUserTokenOrThrow(url, token);
  if (verified.size >= MAX_ENTRIES) verified.delete(verified.keys().next().value!); // the oldest
  verified.set(key, { user, until: Math.min(Date.now() + VERIFIED_TOKEN_TTL_MS, expiryOf(token)) });
  return user;
}

/** Stops trusting every token of `userId` that this process has verified (after their tokens were revoked). */
export function forgetVerifiedTokens(userId: string): void {
  const now = performance.now();
  for (const [id, at] of revokedAt) if (now - at > VERIFIED_TOKEN_TTL_MS) revokedAt.delete(id);
  revokedAt.set(userId, now);
  for (const [key, entry] of verified) if (entry.user.id === userId) verified.delete(key);
}
