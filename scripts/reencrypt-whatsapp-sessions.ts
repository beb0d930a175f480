// node --import tsx scripts/reencrypt-whatsapp-sessions.ts [--execute] [--concurrency N] [--json]
// (or npm run reencrypt:sessions -- …) – after a key rotation, moves every stored session
// archive to SESSION_ENCRYPTION_KEY, so the keys in SESSION_ENCRYPTION_OLD_KEYS can go.
// Without --execute it is a dry run that changes nothing.
import { parseArgs } from "node:util";

import { EnvError, getEnv } from "../src/env";
import { formatBytes } from "../src/lib/format-bytes";
import { createKeyRing } from "../src/lib/messaging/archive-keys";
import { SessionLease } from "../src/lib/messaging/session-lease";
import { REENCRYPTION_PROBLEMS, SessionReencryptor, type ReencryptionRow } from "../src/lib/messaging/session-reencryptor";
import { createServiceClient } from "../src/lib/pocketbase/service-client";
import { loadProjectEnv } from "./lib/load-env";
import { stopOnSignals } from "./lib/stop-on-signals";

const USAGE = `Usage: reencrypt-whatsapp-sessions [--execute] [--concurrency 2] [--json]
  (no flags)     dry run: one row per stored session and the archives per key, nothing changes
  --execute      re-encrypt every archive not under SESSION_ENCRYPTION_KEY
  --concurrency  archives handled at once (default 2)
  --json         one JSON report on stdout instead of the table`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      execute: { type: "boolean", default: false },
      concurrency: { type: "string", default: "2" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return { help: true as const };
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) throw new Error("--concurrency must be a whole number from 1 to 32");
  return { help: false as const, execute: values.execute, concurrency, json: values.json };
}

const LABEL: Record<ReencryptionRow["action"], string> = {
  current: "current key",
  reencrypt: "re-encrypt",
  reencrypted: "re-encrypted",
  gone: "skip: deleted meanwhile",
  running: "skip: running on an instance",
  unknown_key: "skip: unknown key",
  stopped: "skip: the run was stopped first",
  failed: "FAILED",
};

function printTable(rows: ReencryptionRow[]) {
  const table = rows.map((row) => [row.userId, row.keyId || "–", formatBytes(row.sizeBytes), `${LABEL[row.action]}${row.message ? ` – ${row.message}` : ""}`]);
  const header = ["user id", "key id", "archive", "action"];
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((cells) => cells[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  console.log(line(header));
  for (const cells of table) console.log(line(cells));
}

/** How many archives each key holds once the run is over (a re-encrypted one counts for the current key). */
function archivesByKey(rows: ReencryptionRow[], currentKeyId: string): Record<string, number> {
  const counts: Record<string, number> = { [currentKeyId]: 0 };
  for (const row of rows) {
    if (row.action === "gone") continue;
    const keyId = row.action === "reencrypted" ? currentKeyId : row.keyId || "(none recorded)";
    counts[keyId] = (counts[keyId] ?? 0) + 1;
  }
  return counts;
}

async function main(): Promise<number> {
  const cli = parseCli();
  if (cli.help) {
    console.log(USAGE);
    return 0;
  }
  loadProjectEnv(process.env.NODE_ENV === "production" ? "production" : "development");
  const env = getEnv();
  const keys = createKeyRing(env.SESSION_ENCRYPTION_KEY, env.SESSION_ENCRYPTION_OLD_KEYS);
  const pb = await createServiceClient({ url: env.POCKETBASE_URL, email: env.POCKETBASE_ADMIN_EMAIL, password: env.POCKETBASE_ADMIN_PASSWORD });
  // Its own lease owner: while it re-encrypts a user's archive, no instance starts that session.
  const leases = new SessionLease(pb, { instanceId: `reencrypt/${env.INSTANCE_ID}`, ttlMs: env.SESSION_LEASE_TTL_MS });
  // Its scratch archives go where the app's do: one disk to size, swept by the app's housekeeping.
  const reencryptor = new SessionReencryptor({ pb, keys, leases, workDir: env.SESSION_TMP_DIR });

  if (!cli.json) console.error(`${cli.execute ? "Re-encrypting" : "Dry run (nothing changes; --execute to re-encrypt)"}: ${env.POCKETBASE_URL}, current key ${keys.current.id}`);
  const rows = await reencryptor.reencrypt({
    execute: cli.execute,
    concurrency: cli.concurrency,
    signal: stopOnSignals("archives"),
    onRow: (row) => !cli.json && process.stderr.write(`${row.action.padEnd(12)} ${row.userId}\n`),
  });
  const byKey = archivesByKey(rows, keys.current.id);
  const problems = rows.filter((row) => REENCRYPTION_PROBLEMS.has(row.action));

  if (cli.json) {
    console.log(JSON.stringify({ mode: cli.execute ? "execute" : "dry-run", currentKeyId: keys.current.id, rows, archivesByKey: byKey }));
  } else {
    printTable(rows);
    const keysLine = Object.entries(byKey).map(([keyId, count]) => `${keyId}${keyId === keys.current.id ? " (current)" : ""}: ${count}`).join(", ");
    console.log(`archives per key${cli.execute ? "" : " (now)"}: ${keysLine}`);
    const old = Object.entries(byKey).filter(([keyId, count]) => keyId !== keys.current.id && count > 0);
    if (old.length === 0) console.log("Every stored archive is under the current key: SESSION_ENCRYPTION_OLD_KEYS can be emptied.");
    if (problems.length > 0) {
      console.log(`\n${problems.length} archive(s) left under another key:`);
      for (const row of problems) console.log(`  ${row.userId}: ${LABEL[row.action]}${row.message ? ` – ${row.message}` : ""}`);
    }
  }
  return problems.length > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof EnvError ? error.message : `reencrypt-whatsapp-sessions: ${(error as Error).message}`);
  if (!(error instanceof EnvError) && (error as Error).message.includes("--")) console.error(USAGE);
  process.exitCode = 2;
}
