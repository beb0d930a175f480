import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { Header, Pax } from "tar";
import { inject } from "vitest";

type EntryTypeName = Header["type"];

import { createArchiveCipher, createHeader } from "../../src/lib/messaging/archive-format";
import { createKeyRing, type ArchiveKeyRing } from "../../src/lib/messaging/archive-keys";
import { SessionArchiver } from "../../src/lib/messaging/session-archiver";

export interface CraftedEntry {
  path: string;
  type?: EntryTypeName;
  body?: Buffer | string;
  linkpath?: string;
  /** Claimed size in the header (defaults to the body's length). */
  size?: number;
}

/** A tar built header by header, so it can hold what no honest tool writes. */
export function craftTar(entries: CraftedEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? "");
    const type = entry.type ?? "File";
    const fields = {
      path: entry.path,
      type,
      size: entry.size ?? (type === "File" ? body.length : 0),
      mode: type === "Directory" ? 0o755 : 0o644,
      mtime: new Date(0),
      linkpath: entry.linkpath,
    };
    const block = Buffer.alloc(512);
    // A path longer than the header holds goes into a PAX extended header before it.
    if (new Header(fields).encode(block, 0)) blocks.push(new Pax(fields).encode());
    blocks.push(block);
    if (body.length > 0) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Encrypts any payload as a wavault archive under the ring's current key. */
export function sealArchive(payload: Buffer, keys: ArchiveKeyRing): Buffer {
  const header = createHeader(keys.current);
  const cipher = createArchiveCipher(keys.current, header);
  const body = Buffer.concat([cipher.update(payload), cipher.final()]);
  return Buffer.concat([header.bytes, body, cipher.getAuthTag()]);
}

/** A crafted tar, gzipped and sealed: it passes decryption and meets the tar checks. */
export function craftArchive(entries: CraftedEntry[], keys: ArchiveKeyRing): Buffer {
  return sealArchive(gzipSync(craftTar(entries)), keys);
}

export function newKeyRing(): ArchiveKeyRing {
  return createKeyRing(randomBytes(32).toString("base64"));
}

/** An archiver writing into the run's scratch dir (removed by the global setup's teardown). */
export function newArchiver(keys: ArchiveKeyRing = newKeyRing(), limits: Partial<{ maxEntries: number; maxBytes: number }> = {}) {
  return new SessionArchiver({
    keys,
    gzipLevel: 6,
    maxEntries: 10_000,
    maxBytes: 512 * 1024 * 1024,
    workDir: inject("archiveWorkDir"),
    ...limits,
  });
}
