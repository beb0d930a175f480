// node --import tsx scripts/migrate-whatsapp-sessions.ts [--dir D] [--execute [--delete] [--keep-running]] [--concurrency N] [--json]
// (or npm run migrate:sessions -- …) – moves LocalAuth session folders into PocketBase.
// Without --execute it is a dry run that changes nothing.
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { EnvError, getEnv } from "../src/env";
import { formatBytes } from "../src/lib/format-bytes";
import { DatabaseSessionStore } from "../src/lib/messaging/database-session-store";
import { createSessionArchiver } from "../src/lib/messaging/session-store-factory";
import { SessionLease } from "../src/lib/messaging/session-lease";
import { CHANGED_NOT_DELETED, PROBLEM_ACTIONS, SessionMigrator, type MigrationRow } from "../src/lib/messaging/session-migrator";
import { createServiceClient } from "../src/lib/pocketbase/service-client";
import { loadProjectEnv } from "./lib/load-env";
import { stopOnSignals } from "./lib/stop-on-signals";

const USAGE = `Usage: migrate-whatsapp-sessions [--dir .whatsapp-sessions] [--execute [--delete] [--keep-running]] [--concurrency 2] [--json]
  (no flags)     dry run: one row per session folder, nothing changes
  --execute      archive, upload and verify each folder
  --delete       with --execute: delete each folder once its upload is verified
  --keep-running with --execute: mark each verified session to keep running, so that
                 wavault's instances start it by themselves (no connect needed)
  --concurrency  folders handled at once (default 2)
  --json         one JSON report on stdout instead of the table`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: ".whatsapp-sessions" },
      execute: { type: "boolean", default: false },
      delete: { type: "boolean", default: false },
      "keep-running": { type: "boolean", default: false },
      concurrency: { type: "string", default: "2" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const concurrency = Number(values.concurrency);
  if (values.help) return { help: true as const };
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) throw new Error("--concurrency must be a whole number from 1 to 32");
  if (values.delete && !values.execute) throw new Error("--delete only goes with --execute (a dry run deletes nothing)");
  if (values["keep-running"] && !values.execute) throw new Error("--keep-running only goes with --execute (a dry run marks nothing)");
  return {
    help: false as const,
    dir: path.resolve(values.dir),
    execute: values.execute,
    deleteSource: values.delete,
    keepRunning: values["keep-running"],
    concurrency,
    json: values.json,
  };
}

/** A bar on a terminal, a plain line per folder otherwise (both on stderr). */
function progressReporter(total: number | null, quiet: boolean) {
  let done = 0;
  const tty = process.stderr.isTTY;
  return (row: MigrationRow) => {
    done += 1;
    if (quiet) return;
    if (tty && total) {
      const width = 30;
      const filled = Math.round((done / total) * width);
      process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${row.folder.slice(0, 40).padEnd(40)}`);
      if (done === total) process.stderr.write("\n");
    } else {
      process.stderr.write(`${row.action.padEnd(15)} ${row.folder}${row.message ? ` – ${row.message}` : ""}\n`);
    }
  };
}

function printTable(rows: MigrationRow[], execute: boolean) {
  const table = rows.map((row) => [row.userId ?? "–", formatBytes(row.rawBytes), String(row.files ?? "–"), formatBytes(row.archiveBytes), describe(row)]);
  const header = ["user id", "folder size", "files", execute ? "archive" : "archive (est.)", "action"];
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((cells) => cells[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  console.log(line(header));
  for (const cells of table) console.log(line(cells));
}

function describe(row: MigrationRow): string {
  const label: Record<MigrationRow["action"], string> = {
    migrate: "migrate",
    migrated: "migrated",
    unchanged: "skip: already migrated and unchanged",
    stored_by_app: "skip: the app stored a newer session",
    deleted_since: "skip: migrated earlier, deleted since",
    unknown_user: "skip: unknown user",
    invalid_session: "skip: not a valid session",
    running: "skip: running on an instance",
    refused: "refused",
    stopped: "skip: the run was stopped first",
    failed: "FAILED",
  };
  const deleted = row.deleted ? " (folder deleted)" : "";
  // A migrated row's message matters only when its folder was to go and did not.
  const shown = row.message && (!["migrate", "migrated"].includes(row.action) || row.message === CHANGED_NOT_DELETED);
  return `${label[row.action]}${deleted}${shown ? ` – ${row.message}` : ""}`;
}

function totals(rows: MigrationRow[]) {
  const byAction: Record<string, number> = {};
  for (const row of rows) byAction[row.action] = (byAction[row.action] ?? 0) + 1;
  const sum = (pick: (row: MigrationRow) => number | null) => rows.reduce((total, row) => total + (pick(row) ?? 0), 0);
  return {
    folders: rows.length,
    rawBytes: sum((row) => row.rawBytes),
    archiveBytes: sum((row) => row.archiveBytes),
    deleted: rows.filter((row) => row.deleted).length,
    byAction,
    problems: rows.filter((row) => PROBLEM_ACTIONS.has(row.action)).length,
  };
}

async function main(): Promise<number> {
  const cli = parseCli();
  if (cli.help) {
    console.log(USAGE);
    return 0;
  }
  if (!existsSync(cli.dir)) throw new Error(`--dir ${cli.dir}: no such directory`);
  loadProjectEnv(process.env.NODE_ENV === "production" ? "production" : "development");
  const env = getEnv();
  const pb = await createServiceClient({ url: env.POCKETBASE_URL, email: env.POCKETBASE_ADMIN_EMAIL, password: env.POCKETBASE_ADMIN_PASSWORD });
  const archiver = createSessionArchiver(env);
  // No memory tier: a verification must download what PocketBase really holds.
  const store = new DatabaseSessionStore(pb, archiver, { instanceId: `migration/${env.INSTANCE_ID}`, memoryCacheBytes: 0 });
  // Its own lease owner: while it migrates a user, no instance starts that session.
  const leases = new SessionLease(pb, { instanceId: `migration/${env.INSTANCE_ID}`, ttlMs: env.SESSION_LEASE_TTL_MS });
  const migrator = new SessionMigrator({ pb, store, archiver, leases, dir: cli.dir });

  if (!cli.json) console.error(`${cli.execute ? "Migrating" : "Dry run (nothing changes; --execute to migrate)"}: ${cli.dir} → ${env.POCKETBASE_URL}`);
  const folderCount = await migrator.countFolders();
  const signal = stopOnSignals("folders");
  const rows = await migrator.migrate({ ...cli, signal, onRow: progressReporter(folderCount, cli.json) });
  const sums = totals(rows);
  const failures = rows.filter((row) => PROBLEM_ACTIONS.has(row.action));

  if (cli.json) {
    console.log(JSON.stringify({ mode: cli.execute ? "execute" : "dry-run", dir: cli.dir, rows, totals: sums }));
  } else {
    printTable(rows, cli.execute);
    const actions = Object.entries(sums.byAction).map(([action, count]) => `${action} ${count}`).join(", ");
    console.log(
      `total: ${sums.folders} folders, ${formatBytes(sums.rawBytes)} on disk → ${formatBytes(sums.archiveBytes)} archived; ${actions || "nothing to do"}${cli.deleteSource ? `; ${sums.deleted} folder(s) deleted` : ""}`,
    );
    if (failures.length > 0) {
      console.log(`\n${failures.length} folder(s) not migrated (none of them deleted):`);
      for (const row of failures) console.log(`  ${row.folder}: ${describe(row)}`);
    }
    const undeleted = rows.filter((row) => row.message === CHANGED_NOT_DELETED);
    if (undeleted.length > 0) {
      console.log(`\n${undeleted.length} folder(s) migrated but not deleted:`);
      for (const row of undeleted) console.log(`  ${row.folder}: ${row.message}`);
    }
  }
  return failures.length > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof EnvError ? error.message : `migrate-whatsapp-sessions: ${(error as Error).message}`);
  if (!(error instanceof EnvError) && (error as Error).message.includes("--")) console.error(USAGE);
  process.exitCode = 2;
}
