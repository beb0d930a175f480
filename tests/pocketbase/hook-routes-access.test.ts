import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import PocketBase from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import { adminClient, createTestUser, testPocketBase, type TestUser } from "../helpers/pocketbase";

// Every route wavault's hooks add, read from the hook files themselves, so a route added
// later is checked too.
const HOOKS_DIR = path.resolve(import.meta.dirname, "../../pocketbase/pb_hooks");
const routes = readdirSync(HOOKS_DIR)
  .filter((file) => file.endsWith(".pb.js"))
  .flatMap((file) =>
    [...readFileSync(path.join(HOOKS_DIR, file), "utf8").matchAll(/routerAdd\(\s*"([A-Z]+)",\s*"([^"]+)"/g)].map(([, method, route]) => ({ method: method!, route: route! })),
  );

describe("wavault's PocketBase hook routes", () => {
  let admin: PocketBase;
  let alice: TestUser;

  beforeAll(async () => {
    admin = await adminClient();
    alice = await createTestUser(admin);
  });

  const call = (method: string, route: string, token?: string) =>
    fetch(new URL(route, testPocketBase().url), {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: token } : {}) },
      body: method === "GET" ? undefined : JSON.stringify({ user: alice.record.id, owner: "alice's", ttlMs: 600_000 }),
    });

  it("are all found in the hook files", () => {
    expect(routes.map((r) => r.route)).toEqual(expect.arrayContaining(["/api/wavault/leases/claim", "/api/wavault/sessions/archive"]));
    expect(routes.length).toBeGreaterThanOrEqual(13);
  });

  it.each(routes)("$method $route refuses an anonymous caller and a signed-in user", async ({ method, route }) => {
    expect((await call(method, route)).status).toBe(401);
    expect((await call(method, route, alice.token)).status).toBe(403);
  });

  it("leave a user's own session unleased when the user asks for its lease", async () => {
    await call("POST", "/api/wavault/leases/claim", alice.token);
    const records = await admin.collection("whatsapp_sessions").getFullList({ filter: admin.filter("user = {:user}", { user: alice.record.id }) });
    expect(records.every((record) => !record.lease_owner)).toBe(true);
  });
});
