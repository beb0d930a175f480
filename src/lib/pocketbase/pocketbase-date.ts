/**
 * A PocketBase date field ("2026-11-23 20:43:42.123Z", or "" when unset) as ms since the
 * epoch, or null when it is empty or no date.
 */
export function parsePocketBaseDate(value: unknown): number | null {
  const time = typeof value === "string" && value ? Date.parse(value.replace(" ", "T")) : NaN;
  return Number.isNaN(time) ? null : time;
}
