import type PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { INSTANCES_COLLECTION, InstanceRegistry, type InstanceStanding } from "../../../src/lib/messaging/instance-registry";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { createTestUser, startIsolatedPocketBase } from "../../helpers/pocketbase";

/**
 * The instances that resume sessions announce themselves in `whatsapp_instances`. Its
 * own PocketBase: peers() lists every instance in the database.
 */
describe("InstanceRegistry over PocketBase", () => {
  let pocketbase: Awaited<ReturnType<typeof startIsolatedPocketBase>>;
  let admin: PocketBase;
  const started: InstanceRegistry[] = [];
  /** A "process": its leases and its registry share one owner, as in the app. */
  const instance = (instanceId: string, standing: InstanceStanding = { accepting: true, acceptingNewLinks: true, maxConnections: 10 }, ttlMs = 30_000) => {
    const leases = new SessionLease(admin, { instanceId, ttlMs });
    const registry = new InstanceRegistry(admin, { owner: leases.owner, instanceId, url: `http://${instanceId}.internal:3000`, ttlMs });
    return { leases, registry, standing, announce: () => announce(registry, () => standing) };
  };
  const announce = async (registry: InstanceRegistry, read: () => InstanceStanding) => {
    started.push(registry);
    registry.start(read);
    await registry.beat(); // the first heartbeat, under way since start(), has landed
  };
  const recordOf = async (owner: string) =>
    (await admin.collection(INSTANCES_COLLECTION).getList(1, 1, { filter: admin.filter("owner = {:owner}", { owner }) })).items[0];

  beforeAll(async () => {
    pocketbase = await startIsolatedPocketBase();
    admin = await pocketbase.admin();
  });
  afterEach(async () => {
    for (const registry of started.splice(0)) await registry.leave();
    for (const record of await admin.collection(INSTANCES_COLLECTION).getFullList()) await admin.collection(INSTANCES_COLLECTION).delete(record.id);
  });
  afterAll(async () => {
    await pocketbase?.dispose();
  });

  it("announces an instance while it runs, with how it stands, and removes it when it leaves", async () => {
    const a = instance("instance-a", { accepting: true, acceptingNewLinks: true, maxConnections: 5 });
    const before = Date.now();
    await a.announce();
    const record = await recordOf(a.registry.owner);
    expect(record).toMatchObject({ instance_id: "instance-a", url: "http://instance-a.internal:3000", accepting: true, accepting_new_links: true, max_connections: 5 });
    expect(new Date(record!.expires).getTime()).toBeGreaterThanOrEqual(before + 30_000);

    a.standing.acceptingNewLinks = false; // as many waiting for a QR scan as it allows
    await a.registry.beat();
    expect(await recordOf(a.registry.owner)).toMatchObject({ accepting: true, accepting_new_links: false });
    a.standing.accepting = false; // full, say
    await a.registry.beat();
    expect(await recordOf(a.registry.owner)).toMatchObject({ accepting: false });

    await admin.collection(INSTANCES_COLLECTION).delete(record!.id); // gone meanwhile (forgotten by another instance)
    await a.registry.beat();
    expect(await recordOf(a.registry.owner)).toMatchObject({ instance_id: "instance-a" });

    await a.registry.leave();
    expect(await recordOf(a.registry.owner)).toBeUndefined();
    await a.registry.beat(); // a heartbeat after leaving brings nothing back
    expect(await recordOf(a.registry.owner)).toBeUndefined();
  });

  it("lists the other live instances that take sessions, each with the live leases it holds", async () => {
    const [self, busy, idle, full] = [instance("self"), instance("busy", { accepting: true, acceptingNewLinks: true, maxConnections: 20 }), instance("idle"), instance("full")];
    full.standing.accepting = false;
    full.standing.acceptingNewLinks = false;
    for (const each of [self, busy, idle, full]) await each.announce();
    const users = await Promise.all([1, 2, 3, 4].map(() => createTestUser(admin)));
    await busy.leases.claim(users[0]!.record.id);
    await busy.leases.claim(users[1]!.record.id);
    await busy.leases.release(await busy.leases.claim(users[2]!.record.id)); // released: no longer counts
    await full.leases.claim(users[3]!.record.id);
    // An instance that died: its record expired, its lease not yet.
    await admin.collection(INSTANCES_COLLECTION).create({
      owner: "dead/00000000",
      instance_id: "dead",
      accepting: true,
      max_connections: 10,
      expires: new Date(Date.now() - 1_000).toISOString(),
    });

    const load = (of: typeof self, clients: number, maxConnections = 10) =>
      expect.objectContaining({
        owner: of.registry.owner,
        instanceId: of.registry.owner.split("/")[0],
        clients,
        maxConnections,
        accepting: of.standing.accepting,
        acceptingNewLinks: of.standing.acceptingNewLinks,
        self: of === self,
      });
    expect(await self.registry.peers()).toEqual([load(busy, 2, 20), load(idle, 0)]);
    // Every live one, for the operator's page: this one and a full one too, oldest first.
    const live = await self.registry.live();
    expect(live).toEqual([load(self, 0), load(busy, 2, 20), load(idle, 0), load(full, 1)]);
    expect(live[0]).toMatchObject({ url: "http://self.internal:3000", seenSecondsAgo: expect.any(Number) });
    expect(live[0]!.seenSecondsAgo).toBeLessThan(30);
  });

  it("names the peers a connect can go to, the least loaded for its cap first, only those with an address", async () => {
    const [self, half, quarter, fewer, full] = [
      instance("self"),
      instance("half", { accepting: true, acceptingNewLinks: true, maxConnections: 4 }),
      instance("quarter", { accepting: true, acceptingNewLinks: true, maxConnections: 8 }),
      instance("fewer", { accepting: true, acceptingNewLinks: true, maxConnections: 4 }),
      instance("full", { accepting: false, acceptingNewLinks: false, maxConnections: 10 }),
    ];
    const unreachable = new InstanceRegistry(admin, { owner: "no-url/0", instanceId: "no-url", ttlMs: 30_000 }); // no INSTANCE_URL
    // The process before this one at the same address (a restart), its record not expired yet.
    const earlierSelf = new InstanceRegistry(admin, { owner: "self/earlier", instanceId: "self", url: "http://self.internal:3000", ttlMs: 30_000 });
    for (const each of [self, half, quarter, fewer, full]) await each.announce();
    for (const other of [unreachable, earlierSelf]) await announce(other, () => ({ accepting: true, acceptingNewLinks: true, maxConnections: 10 }));
    const users = await Promise.all([1, 2, 3, 4, 5].map(() => createTestUser(admin)));
    await half.leases.claim(users[0]!.record.id);
    await half.leases.claim(users[1]!.record.id);
    await quarter.leases.claim(users[2]!.record.id);
    await quarter.leases.claim(users[3]!.record.id);
    await fewer.leases.claim(users[4]!.record.id);

    // quarter (2 of 8) and fewer (1 of 4) stand alike: fewer runs fewer. Then half (2 of 4).
    expect((await self.registry.peersWithRoom()).map((peer) => peer.instanceId)).toEqual(["fewer", "quarter", "half"]);

    // fewer reaches its MAX_WHATSAPP_QR_WAITING: it still takes stored sessions, not new links.
    fewer.standing.acceptingNewLinks = false;
    await fewer.registry.beat();
    expect((await self.registry.peersWithRoom()).map((peer) => peer.instanceId)).toEqual(["fewer", "quarter", "half"]);
    expect((await self.registry.peersWithRoom({ newLink: true })).map((peer) => peer.instanceId)).toEqual(["quarter", "half"]);
  });

  it("counts an instance of an earlier version, which does not say whether it takes new links, as taking them when it takes sessions", async () => {
    const self = instance("self");
    await self.announce();
    const earlier = (owner: string, accepting: boolean) =>
      admin.send("/api/wavault/instances/beat", {
        method: "POST",
        body: { owner, instanceId: owner.split("/")[0], url: `http://${owner.split("/")[0]}.internal:3000`, accepting, maxConnections: 10, ttlMs: 30_000 },
      });
    await earlier("older-open/0", true);
    await earlier("older-full/0", false);
    expect(await self.registry.live()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ instanceId: "older-open", accepting: true, acceptingNewLinks: true }),
        expect.objectContaining({ instanceId: "older-full", accepting: false, acceptingNewLinks: false }),
      ]),
    );
    expect((await self.registry.peersWithRoom({ newLink: true })).map((peer) => peer.instanceId)).toEqual(["older-open"]);
  });

  it("deletes the records of instances that died more than an hour ago, and keeps newer ones", async () => {
    const records = admin.collection(INSTANCES_COLLECTION);
    const dead = (owner: string, msAgo: number) =>
      records.create({ owner, instance_id: owner, max_connections: 10, expires: new Date(Date.now() - msAgo).toISOString() });
    const old = await dead("died-yesterday/0", 24 * 60 * 60_000);
    const recent = await dead("died-recently/0", 10 * 60_000);
    await instance("sweeper").announce();
    await expect(records.getOne(old.id)).rejects.toMatchObject({ status: 404 });
    expect((await records.getOne(recent.id)).owner).toBe("died-recently/0");
  });

  it("is the backend's own: a signed-in user can neither list nor create instance records, nor use its routes", async () => {
    await instance("private").announce();
    const user = await createTestUser(admin);
    await expect(user.pb.collection(INSTANCES_COLLECTION).getFullList()).rejects.toMatchObject({ status: 403 });
    await expect(
      user.pb.collection(INSTANCES_COLLECTION).create({ owner: "forged/0", max_connections: 1, accepting: true, expires: new Date(Date.now() + 60_000).toISOString() }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(user.pb.send("/api/wavault/instances", { method: "GET" })).rejects.toMatchObject({ status: 403 });
    await expect(user.pb.send("/api/wavault/instances/leave", { method: "POST", body: { owner: "x/0" } })).rejects.toMatchObject({ status: 403 });
  });
});
