import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { disposeArchive, readArchive } from "../../../src/lib/messaging/session-archiver";
import { createSessionArchiver } from "../../../src/lib/messaging/session-store-factory";
import { writeFakeProfile } from "../../helpers/fake-profile";

describe("createSessionArchiver", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-factory-"));
    await writeFakeProfile(path.join(dir, "profile"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (key: string, oldKeys = "") =>
    parseEnv({
      POCKETBASE_ADMIN_EMAIL: "admin@example.com",
      POCKETBASE_ADMIN_PASSWORD: "a-long-enough-password",
      SESSION_ENCRYPTION_KEY: key,
      SESSION_ENCRYPTION_OLD_KEYS: oldKeys,
    });

  it("restores archives of a key rotated into SESSION_ENCRYPTION_OLD_KEYS", async () => {
    const [oldKey, newKey] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];
    const archived = await createSessionArchiver(config(oldKey)).archiveSession(path.join(dir, "profile"));
    const archive = await readArchive(archived);
    await disposeArchive(archived);
    await expect(
      createSessionArchiver(config(newKey, oldKey)).restoreSession(archive, path.join(dir, "restored")),
    ).resolves.toMatchObject({ sizeBytes: archive.length });
    await expect(createSessionArchiver(config(newKey)).restoreSession(archive, path.join(dir, "other"))).rejects.toThrow(
      /no configured key/,
    );
  });
});
