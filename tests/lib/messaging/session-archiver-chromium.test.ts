import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { hasValidSession } from "../../../src/lib/messaging/session-archiver";
import { newArchiver } from "../../helpers/crafted-archive";
import {
  buildChromiumProfile,
  readChromiumProfile,
  startProfileOrigin,
  type ProfileContent,
} from "../../fixtures/chromium-profile";

describe("SessionArchiver on a real Chromium profile", () => {
  let dir: string;
  let origin: Awaited<ReturnType<typeof startProfileOrigin>>;
  let content: ProfileContent;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-chromium-profile-"));
    origin = await startProfileOrigin();
    content = await buildChromiumProfile(path.join(dir, "profile"), origin.url, { messagesMb: 4, cacheMb: 100 });
  }, 180_000);

  afterAll(async () => {
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("restores IndexedDB and localStorage into a profile Chromium reads back, from an archive under 10% of it", async () => {
    const archiver = newArchiver();
    const archived = await archiver.archiveSession(path.join(dir, "profile"));
    expect(archived.rawBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(archived.sizeBytes).toBeLessThan(archived.rawBytes * 0.1);

    const restored = path.join(dir, "restored");
    await archiver.restoreSession(createReadStream(archived.file), restored, { expectedSha256: archived.sha256 });
    expect(hasValidSession(restored, origin.url)).toBe(true);

    expect(await readChromiumProfile(restored, origin.url)).toEqual(content);
  });
});
