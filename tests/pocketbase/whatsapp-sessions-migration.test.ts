import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CollectionField, CollectionModel } from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import { MIGRATIONS_DIR, projectArgs, runToExit } from "../../scripts/lib/pocketbase-server";
import { adminClient, testPocketBase } from "../helpers/pocketbase";

const MIGRATION = "1739630000_create_whatsapp_sessions.js";
const EVENTS_MIGRATION = "1739640000_create_whatsapp_session_events.js";
const EVENTS_AT_MIGRATION = "1739650000_add_at_to_whatsapp_session_events.js";
const USER_IDS_MIGRATION = "1739660000_users_ids_chosen_by_server.js";
const HIDDEN_MIGRATION = "1739670000_hide_session_internals.js";
const KEEP_RUNNING_MIGRATION = "1739680000_add_keep_running.js";
const OWNER_URL_MIGRATION = "1739690000_add_lease_owner_url.js";
const RESUME_BACKOFF_MIGRATION = "1739700000_add_resume_backoff.js";
const INSTANCES_MIGRATION = "1739710000_create_whatsapp_instances.js";
const USERS_DEFAULTS_MIGRATION = "1739720000_users_no_avatar_no_self_delete.js";
const ARCHIVE_FAILED_MIGRATION = "1739730000_add_archive_failed_event.js";
const RATE_LIMIT_MIGRATION = "1739740000_rate_limit_password_sign_ins.js";
const HISTORY_NAMES_MIGRATION = "1739750000_history_without_server_names.js";
const SEND_KEYS_MIGRATION = "1739760000_create_whatsapp_send_keys.js";
const SEND_KEYS_CLAIMED_MIGRATION = "1739770000_send_keys_claimed_before_sending.js";
const INSTANCES_NEW_LINKS_MIGRATION = "1739780000_add_instances_accepting_new_links.js";

describe("the whatsapp_sessions migration", () => {
  let collection: CollectionModel;
  let usersId: string;
  const field = (name: string) => {
    const found = collection.fields.find((f: CollectionField) => f.name === name);
    if (!found) throw new Error(`field ${name} is missing`);
    return found;
  };

  beforeAll(async () => {
    const admin = await adminClient();
    collection = await admin.collections.getOne("whatsapp_sessions");
    usersId = (await admin.collections.getOne("users")).id;
  });

  it("creates the fields of DESIGN.md's table with their types", () => {
    const types = Object.fromEntries(collection.fields.filter((f) => !f.system).map((f) => [f.name, f.type]));
    expect(types).toEqual({
      user: "relation",
      archive: "file",
      compressed: "bool",
      size_bytes: "number",
      phone_number: "text",
      status: "select",
      last_active: "date",
      metadata: "json",
      lease_owner: "text",
      lease_expires: "date",
      lease_generation: "number",
      keep_running: "bool",
      lease_owner_url: "text",
      resume_failures: "number",
      resume_after: "date",
      created: "autodate",
      updated: "autodate",
    });
  });

  it("links each record to one user, required, deleted with the user", () => {
    expect(field("user")).toMatchObject({ required: true, collectionId: usersId, cascadeDelete: true, maxSelect: 1 });
  });

  it("keeps the archive in one protected file with a size limit", () => {
    const archive = field("archive");
    expect(archive).toMatchObject({ protected: true, maxSelect: 1 });
    expect(archive.maxSize).toBeGreaterThan(0);
  });

  it("limits status to the session status machine", () => {
    expect(field("status")).toMatchObject({
      maxSelect: 1,
      values: ["created", "initializing", "qr_ready", "authenticating", "ready", "disconnected", "failed"],
    });
  });

  it("stamps created on create and updated on every update", () => {
    expect(field("created")).toMatchObject({ onCreate: true, onUpdate: false });
    expect(field("updated")).toMatchObject({ onCreate: true, onUpdate: true });
  });

  it("indexes user uniquely, last_active, phone_number and lease_owner (each instance's load is counted by it)", () => {
    const normalized = collection.indexes.map((sql: string) => sql.replace(/[`"]/g, ""));
    expect(normalized).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^CREATE UNIQUE INDEX \S+ ON whatsapp_sessions \(user\)$/),
        expect.stringMatching(/^CREATE INDEX \S+ ON whatsapp_sessions \(last_active\)$/),
        expect.stringMatching(/^CREATE INDEX \S+ ON whatsapp_sessions \(phone_number\)$/),
        expect.stringMatching(/^CREATE INDEX \S+ ON whatsapp_sessions \(lease_owner\)$/),
      ]),
    );
  });

  it("lets a user list and view only their own record and leaves writes to superusers", () => {
    expect(collection.listRule).toBe('@request.auth.id != "" && user = @request.auth.id');
    expect(collection.viewRule).toBe(collection.listRule);
    expect(collection.createRule).toBeNull();
    expect(collection.updateRule).toBeNull();
    expect(collection.deleteRule).toBeNull();
  });

  it("gives session events the date they happened (at), indexed per user", async () => {
    const events = await (await adminClient()).collections.getOne("whatsapp_session_events");
    expect(events.fields.find((f: CollectionField) => f.name === "at")).toMatchObject({ type: "date", required: false });
    expect(events.indexes.join("\n")).toMatch(/idx_whatsapp_session_events_user_at.*\(`user`, `at`\)/);
  });

  it("lets an Idempotency-Key be claimed before its message id is known, and says which instances take new links", async () => {
    const admin = await adminClient();
    const sendKeys = await admin.collections.getOne("whatsapp_send_keys");
    expect(sendKeys.fields.find((f: CollectionField) => f.name === "message_id")).toMatchObject({ type: "text", required: false });
    const instances = await admin.collections.getOne("whatsapp_instances");
    expect(instances.fields.find((f: CollectionField) => f.name === "accepting_new_links")).toMatchObject({ type: "bool" });
  });

  it("has a down migration that removes the collection, so up can create it again", async () => {
    const { bin } = testPocketBase();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-"));
    try {
      const migrate = (...args: string[]) => runToExit(bin, ["migrate", ...args, ...projectArgs(dataDir)], {}, "y\n");

      const up = await migrate("up");
      expect(up.code, up.output).toBe(0);
      expect(up.output).toContain(`Applied ${MIGRATION}`);

      // The events collection (later migrations) relates to this one: down reverts all sixteen.
      const down = await migrate("down", "16");
      expect(down.code, down.output).toBe(0);
      expect(down.output).toContain(`Reverted ${INSTANCES_NEW_LINKS_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${SEND_KEYS_CLAIMED_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${SEND_KEYS_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${HISTORY_NAMES_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${RATE_LIMIT_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${ARCHIVE_FAILED_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${USERS_DEFAULTS_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${INSTANCES_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${RESUME_BACKOFF_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${OWNER_URL_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${KEEP_RUNNING_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${HIDDEN_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${USER_IDS_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${EVENTS_AT_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${EVENTS_MIGRATION}`);
      expect(down.output).toContain(`Reverted ${MIGRATION}`);

      // A second up would fail on the duplicate collection names had down not removed them.
      const again = await migrate("up");
      expect(again.code, again.output).toBe(0);
      expect(again.output).toContain(`Applied ${MIGRATION}`);
      expect(again.output).toContain(`Applied ${EVENTS_MIGRATION}`);
      expect(again.output).toContain(`Applied ${EVENTS_AT_MIGRATION}`);
      expect(again.output).toContain(`Applied ${HIDDEN_MIGRATION}`);
      expect(again.output).toContain(`Applied ${USER_IDS_MIGRATION}`);
      expect(again.output).toContain(`Applied ${KEEP_RUNNING_MIGRATION}`);
      expect(again.output).toContain(`Applied ${OWNER_URL_MIGRATION}`);
      expect(again.output).toContain(`Applied ${RESUME_BACKOFF_MIGRATION}`);
      expect(again.output).toContain(`Applied ${INSTANCES_MIGRATION}`);
      expect(again.output).toContain(`Applied ${USERS_DEFAULTS_MIGRATION}`);
      expect(again.output).toContain(`Applied ${RATE_LIMIT_MIGRATION}`);
      expect(again.output).toContain(`Applied ${HISTORY_NAMES_MIGRATION}`);
      expect(again.output).toContain(`Applied ${SEND_KEYS_MIGRATION}`);
      expect(again.output).toContain(`Applied ${SEND_KEYS_CLAIMED_MIGRATION}`);
      expect(again.output).toContain(`Applied ${INSTANCES_NEW_LINKS_MIGRATION}`);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("marks the sessions that were running when keep_running arrives, and only those", async () => {
    // The real migrations, with one that seeds records before keep_running's and one
    // after it that fails the run unless each record came out as expected.
    const dir = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-keep-"));
    const migrations = path.join(dir, "migrations");
    try {
      await cp(MIGRATIONS_DIR, migrations, { recursive: true });
      await writeFile(
        path.join(migrations, "1739675000_test_seed.js"),
        `migrate((app) => {
          const users = app.findCollectionByNameOrId("users");
          const sessions = app.findCollectionByNameOrId("whatsapp_sessions");
          for (const status of ["ready", "disconnected", "qr_ready"]) {
            const user = new Record(users);
            user.set("email", status + "@wavault.test");
            user.setPassword("password-1234");
            app.save(user);
            const session = new Record(sessions);
            session.set("user", user.id);
            session.set("status", status);
            app.save(session);
          }
        });`,
      );
      await writeFile(
        path.join(migrations, "1739690000_test_check.js"),
        `migrate((app) => {
          for (const record of app.findAllRecords("whatsapp_sessions")) {
            const expected = record.getString("status") === "ready";
            if (record.getBool("keep_running") !== expected) throw new Error("wrong keep_running for " + record.getString("status"));
          }
        });`,
      );
      const up = await runToExit(testPocketBase().bin, ["migrate", "up", `--dir=${path.join(dir, "data")}`, `--migrationsDir=${migrations}`], {}, "y\n");
      expect(up.code, up.output).toBe(0);
      expect(up.output).toContain("Applied 1739690000_test_check.js");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes the server's name out of the lease_taken_over events recorded before, and nothing else", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "wavault-migrate-names-"));
    const migrations = path.join(dir, "migrations");
    try {
      await cp(MIGRATIONS_DIR, migrations, { recursive: true });
      await writeFile(
        path.join(migrations, "1739745000_test_seed.js"),
        `migrate((app) => {
          const user = new Record(app.findCollectionByNameOrId("users"));
          user.set("email", "history@wavault.test");
          user.setPassword("password-1234");
          app.save(user);
          const events = app.findCollectionByNameOrId("whatsapp_session_events");
          for (const [event, data] of [
            ["lease_taken_over", { from: "wavault/host-1234/0a1b2c3d", generation: 7 }],
            ["lease_lost", { reason: "taken_over", from: "kept" }],
          ]) {
            const record = new Record(events);
            record.set("user", user.id);
            record.set("event", event);
            record.set("data", data);
            app.save(record);
          }
        });`,
      );
      await writeFile(
        path.join(migrations, "1739755000_test_check.js"),
        `migrate((app) => {
          for (const record of app.findAllRecords("whatsapp_session_events")) {
            const data = JSON.stringify(JSON.parse(record.getString("data")));
            const expected = record.getString("event") === "lease_taken_over" ? '{"generation":7}' : '{"from":"kept","reason":"taken_over"}';
            if (data !== expected) throw new Error("unexpected data " + data);
          }
        });`,
      );
      const up = await runToExit(testPocketBase().bin, ["migrate", "up", `--dir=${path.join(dir, "data")}`, `--migrationsDir=${migrations}`], {}, "y\n");
      expect(up.code, up.output).toBe(0);
      expect(up.output).toContain("Applied 1739755000_test_check.js");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
