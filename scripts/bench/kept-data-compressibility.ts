// npm run bench:compressibility [-- <profile dir>] – how small the login data a profile
// keeps can get at all: the kept files as they are on disk, then their content with
// Chromium's own snappy compression undone, through gzip, brotli and (when installed)
// xz. It answers whether an archive-size target is reachable for a profile, whatever the
// archiver does. Defaults to bench:archive's profile (run that once first).
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import snappy from "snappyjs";

import { scanProfile } from "../../src/lib/messaging/profile-scan";
import { PROJECT_ROOT } from "../lib/load-env";

// Blink writes a large IndexedDB value snappy-compressed behind this 3-byte prefix:
// 0xFF (version tag), 0x11 (its "needs processing" pseudo-version), 0x02 (snappy).
const SNAPPY_VALUE = Buffer.from([0xff, 0x11, 0x02]);

async function main() {
  const profileDir = path.resolve(process.argv[2] ?? path.join(PROJECT_ROOT, "bench/.cache/chromium-profile-150mb"));
  const scan = await scanProfile(profileDir);
  const onDisk: Buffer[] = [];
  const content: Buffer[] = [];
  let unsnapped = 0;
  for (const entry of scan.kept) {
    if (entry.type !== "file") continue;
    const bytes = await readFile(path.join(profileDir, entry.path));
    onDisk.push(bytes);
    if (bytes.subarray(0, SNAPPY_VALUE.length).equals(SNAPPY_VALUE)) {
      content.push(Buffer.from(snappy.uncompress(bytes.subarray(SNAPPY_VALUE.length))));
      unsnapped += 1;
    } else {
      content.push(bytes);
    }
  }
  const kept = Buffer.concat(onDisk);
  const raw = Buffer.concat(content);
  const rows: Record<string, { MiB: string; "% of raw profile": string; ms: number }> = {};
  const row = (name: string, compress: () => number) => {
    const started = performance.now();
    const bytes = compress();
    rows[name] = {
      MiB: (bytes / 1024 / 1024).toFixed(2),
      "% of raw profile": ((bytes / scan.rawBytes) * 100).toFixed(1),
      ms: Math.round(performance.now() - started),
    };
  };
  row("kept files as on disk", () => kept.length);
  row("kept files, gzip -6", () => gzipSync(kept, { level: 6 }).length);
  row(`content with snappy undone (${unsnapped} values)`, () => raw.length);
  row("content, gzip -6", () => gzipSync(raw, { level: 6 }).length);
  row("content, gzip -9", () => gzipSync(raw, { level: 9 }).length);
  row("content, brotli 6", () => brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 6 } }).length);
  try {
    row("content, xz -6", () => execFileSync("xz", ["-6", "-T1", "-c"], { input: raw, maxBuffer: raw.length * 2 }).length);
  } catch {
    console.log("(xz is not installed: its row is left out)");
  }
  console.log(`profile ${profileDir}: ${(scan.rawBytes / 1024 / 1024).toFixed(1)} MB on disk, ${scan.keptFiles} kept files`);
  console.table(rows);
}

await main();
