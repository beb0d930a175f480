/**
 * One structured line per event: `{"level","msg",...fields,"time"}` on stdout (errors on
 * stderr), so logs stay greppable by message ("Session archived to database") and
 * parseable by field.
 */
export function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields, time: new Date().toISOString() });
  if (level === "error") console.error(line);
  else console.log(line);
}
