// One archive + save + cold restore in a fresh process, for bench:archive: prints how far
// the process's peak RSS rose above its RSS once everything was loaded. Linux resets the
// peak (VmHWM) on "5" written to clear_refs, so start-up (tsx compiling) is not counted.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { DatabaseSessionStore } from "../../src/lib/messaging/database-session-store";
import { disposeArchive, SessionArchiver } from "../../src/lib/messaging/session-archiver";
import { createKeyRing } from "../../src/lib/messaging/archive-keys";

const input = JSON.parse(process.env.WAVAULT_RSS_PROBE ?? "{}") as {
  url: string;
  email: string;
  password: string;
  userId: string;
  profileDir: string;
  target: string;
  key: string;
};
const admin = await createServiceClient({ url: input.url, email: input.email, password: input.password });
const archiver = new SessionArchiver({
  keys: createKeyRing(input.key),
  gzipLevel: 6,
  maxEntries: 50_000,
  maxBytes: 1024 ** 3,
  workDir: path.dirname(input.target),
});
const store = () => new DatabaseSessionStore(admin, archiver, { instanceId: "bench", memoryCacheBytes: 0 });
await admin.collection("users").getOne(input.userId); // warm the client up before the baseline

const statusKb = (field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"))?.[1]) * 1024;
writeFileSync("/proc/self/clear_refs", "5");
const baseline = statusKb("VmRSS");
const archived = await archiver.archiveSession(input.profileDir);
await store().saveSession(input.userId, archived);
await store().loadSession(input.userId, input.target);
const peak = statusKb("VmHWM");
await disposeArchive(archived);
console.log(JSON.stringify({ peakGrowthMb: (peak - baseline) / 1024 / 1024 }));
