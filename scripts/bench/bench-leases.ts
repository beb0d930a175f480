// npm run bench:leases [-- --json] – how many lease renewals a second PocketBase takes:
// one request a lease (the renew route) against an instance's batch (renew-many, as
// LeaseRenewer sends it), on the same sessions of one throwaway PocketBase.
import { SessionLease, type Lease } from "../../src/lib/messaging/session-lease";
import { createBenchUser, startBenchPocketBase } from "./bench-support";

const SESSIONS = 400;
/** Sessions one instance runs (its batch); about what 24 GB holds at 250 MB a client. */
const BATCH = 80;
const SECONDS = 10;

interface Figures {
  renewalsPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `round` from `workers` loops at once for SECONDS; each round renews `perRound` leases. */
async function measure(workers: number, perRound: number, round: (index: number) => Promise<void>): Promise<Figures> {
  const latencies: number[] = [];
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let index = worker; Date.now() < until; index += workers) {
        const started = performance.now();
        await round(index);
        latencies.push(performance.now() - started);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (share: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * share))]!.toFixed(1));
  return {
    renewalsPerSecond: Math.round((latencies.length * perRound) / SECONDS),
    requestsPerSecond: Math.round(latencies.length / SECONDS),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  };
}

async function main() {
  const json = process.argv.includes("--json");
  const print = console.log.bind(console);
  console.log = (...args: unknown[]) => console.error(...args); // keep stdout for the result
  const pocketbase = await startBenchPocketBase();
  try {
    const admin = await pocketbase.admin();
    const leases = new SessionLease(admin, { instanceId: "bench", ttlMs: 600_000 });
    const held: Lease[] = [];
    for (let i = 0; i < SESSIONS; i++) held.push(await leases.claim(await createBenchUser(admin)));

    const single = await measure(16, 1, async (index) => {
      await leases.renew(held[index % SESSIONS]!);
    });
    const batched = await measure(4, BATCH, async (index) => {
      const batch = Array.from({ length: BATCH }, (_, k) => held[(index * BATCH + k) % SESSIONS]!);
      const { lost } = await leases.renewMany(batch);
      if (lost.length) throw new Error(`${lost.length} leases lost during the benchmark`);
    });
    const result = { sessions: SESSIONS, batch: BATCH, single, batched };
    if (json) {
      print(JSON.stringify(result));
      return;
    }
    print(`lease renewals, ${SESSIONS} sessions, ${SECONDS} s each`);
    print("                        renewals/s  requests/s  p50 ms  p99 ms");
    for (const [name, figures] of [["one request a lease", single], [`renew-many (${BATCH} a request)`, batched]] as const) {
      print(
        `${name.padEnd(24)}${String(figures.renewalsPerSecond).padStart(10)}${String(figures.requestsPerSecond).padStart(12)}` +
          `${String(figures.p50Ms).padStart(8)}${String(figures.p99Ms).padStart(8)}`,
      );
    }
  } finally {
    await pocketbase.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
