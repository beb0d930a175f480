import { randomUUID } from "node:crypto";
import type PocketBase from "pocketbase";

import { ensurePocketBaseBinary } from "../lib/pocketbase-binary";
import { startThrowawayPocketBase } from "../lib/pocketbase-server";

/** A throwaway PocketBase for one benchmark run. */
export async function startBenchPocketBase() {
  return startThrowawayPocketBase(await ensurePocketBaseBinary());
}

/** Creates a user to own a benchmark session record; returns its id. */
export async function createBenchUser(admin: PocketBase): Promise<string> {
  const password = `pw-${randomUUID()}`;
  const user = await admin
    .collection("users")
    .create({ email: `bench-${randomUUID()}@wavault.test`, password, passwordConfirm: password });
  return user.id;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** One archive and one cold restore of the same profile, timed. */
export interface BenchRun {
  archiveBytes: number;
  archiveMs: number;
  restoreMs: number;
}
