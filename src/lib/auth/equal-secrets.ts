import { createHash, timingSafeEqual } from "node:crypto";

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Whether two secrets are equal, in the same time whatever the guess: both sides are
 * hashed to equal length first, then compared with timingSafeEqual.
 */
export function equalSecrets(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
