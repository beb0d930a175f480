const DAY_MS = 24 * 60 * 60 * 1000;

/** The moment `days` days (whole or fractional) before `now`. */
export function daysAgo(days: number, now: Date = new Date()): Date {
  return new Date(now.getTime() - days * DAY_MS);
}
