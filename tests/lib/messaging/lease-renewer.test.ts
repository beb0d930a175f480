import type PocketBase from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";

import { LeaseKeeper, type LeaseLossReason } from "../../../src/lib/messaging/lease-keeper";
import { SessionLease } from "../../../src/lib/messaging/session-lease";
import { adminClient, createTestUser } from "../../helpers/pocketbase";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A superuser client of its own whose lease requests are recorded (path and body); `rename` changes a route's path first. */
async function watchedClient(rename: Record<string, string> = {}) {
  const pb = await adminClient();
  const sent: { route: string; body: Record<string, unknown> }[] = [];
  const inFlight = { now: 0, most: 0 };
  const previous = pb.beforeSend;
  pb.afterSend = (_response, data) => {
    inFlight.now -= 1;
    return data;
  };
  pb.beforeSend = async (url, options) => {
    inFlight.most = Math.max(inFlight.most, ++inFlight.now);
    const match = /\/api\/wavault\/leases\/([a-z-]+)/.exec(url);
    if (match) sent.push({ route: match[1]!, body: options.body as Record<string, unknown> });
    const renamed = match && rename[match[1]!] ? url.replace(match[0], `/api/wavault/leases/${rename[match[1]!]}`) : url;
    return previous ? previous(renamed, options) : { url: renamed, options };
  };
  return { pb, sent, inFlight };
}

describe("lease renewals: one request a round for all of an instance's leases", () => {
  let admin: PocketBase;
  beforeAll(async () => {
    admin = await adminClient();
  });
  const sessionOf = (userId: string) => admin.collection("whatsapp_sessions").getFirstListItem(`user = "${userId}"`);

  it("renewMany extends the leases still held, counts it as activity, and names the ones taken over", async () => {
    const [kept, taken] = [await createTestUser(admin), await createTestUser(admin)];
    const a = new SessionLease(admin, { instanceId: "instance-a", ttlMs: 60_000 });
    const keptLease = await a.claim(kept.record.id);
    const takenLease = await new SessionLease(admin, { instanceId: "instance-a", ttlMs: 300 }).claim(taken.record.id);
    await sleep(400); // the 300 ms lease lapses; another instance takes the session over
    await new SessionLease(admin, { instanceId: "instance-b", ttlMs: 60_000 }).claim(taken.record.id);
    const before = await sessionOf(kept.record.id);

    const { renewed, lost } = await a.renewMany([keptLease, takenLease]);

    expect(renewed.map((lease) => [lease.userId, lease.generation])).toEqual([[kept.record.id, keptLease.generation]]);
    expect(renewed[0]!.expiresAt.getTime()).toBeGreaterThanOrEqual(keptLease.expiresAt.getTime() + 400);
    expect(lost.map((lease) => lease.userId)).toEqual([taken.record.id]);
    const after = await sessionOf(kept.record.id);
    expect(new Date(after.lease_expires).getTime()).toBe(renewed[0]!.expiresAt.getTime());
    expect(new Date(after.last_active).getTime()).toBeGreaterThan(new Date(before.last_active || 0).getTime());
    expect((await sessionOf(taken.record.id)).lease_owner).toMatch(/^instance-b\//);
  });

  it("renews the leases of all of a process's channels in one request a round, however their claims were spread", async () => {
    const { pb, sent } = await watchedClient();
    const leases = new SessionLease(pb, { instanceId: "busy", ttlMs: 1_500 }); // a round every 500 ms; given up at 1,250 ms
    const losses: LeaseLossReason[] = [];
    const keepers: LeaseKeeper[] = [];
    for (let i = 0; i < 4; i++) {
      const user = await createTestUser(admin);
      const keeper = new LeaseKeeper(leases, user.record.id, (work) => work(), (reason) => losses.push(reason));
      await keeper.claim();
      keepers.push(keeper);
      await sleep(150);
    }
    const claimedAt = Math.max(...keepers.map((keeper) => keeper.lease!.expiresAt.getTime()));
    await sleep(2_000); // past every claim's own deadline: only renewals kept them

    expect(losses).toEqual([]);
    expect(sent.filter(({ route }) => route === "renew")).toEqual([]);
    const rounds = sent.filter(({ route }) => route === "renew-many");
    expect(rounds.length).toBeGreaterThanOrEqual(2);
    expect((rounds.at(-1)!.body.leases as unknown[]).length).toBe(4);
    for (const keeper of keepers) expect(keeper.lease!.expiresAt.getTime()).toBeGreaterThan(claimedAt);
    await Promise.all(keepers.map((keeper) => keeper.release()));
    const afterRelease = sent.length;
    await sleep(700);
    expect(sent.length).toBe(afterRelease); // nothing held: no more rounds
  });

  it("tells only the channel whose session was taken from it that its lease is lost", async () => {
    const leases = new SessionLease(admin, { instanceId: "instance-c", ttlMs: 1_500 });
    const losses = new Map<string, LeaseLossReason>();
    const [stays, goes] = [await createTestUser(admin), await createTestUser(admin)];
    const keeperOf = (userId: string) => new LeaseKeeper(leases, userId, (work) => work(), (reason) => losses.set(userId, reason));
    const [staying, going] = [keeperOf(stays.record.id), keeperOf(goes.record.id)];
    await staying.claim();
    await going.claim();

    await admin.collection("whatsapp_sessions").delete((await sessionOf(goes.record.id)).id); // logged out elsewhere, say
    await expect.poll(() => losses.get(goes.record.id), { timeout: 30_000 }).toBe("taken_over");
    await sleep(1_500); // more rounds, past the staying lease's own deadline
    expect(losses.has(stays.record.id)).toBe(false);
    expect(staying.lease).not.toBeNull();
    await staying.release();
  });

  it("renews one lease a request, many at once, against hooks that have no batch route (older than the app)", async () => {
    const { pb, sent, inFlight } = await watchedClient({ "renew-many": "renew-many-unknown" });
    const leases = new SessionLease(pb, { instanceId: "upgrading", ttlMs: 60_000 });
    const users = await Promise.all(Array.from({ length: 40 }, () => createTestUser(admin)));
    const held = [];
    for (const user of users) held.push(await leases.claim(user.record.id));
    inFlight.most = 0;

    const first = await leases.renewMany(held);
    const second = await leases.renewMany(held);

    expect(first.renewed.map((lease) => lease.userId).sort()).toEqual(users.map((user) => user.record.id).sort());
    expect([first.lost, second.lost, second.renewed.length]).toEqual([[], [], 40]);
    // The batch route was asked once; from then on, one renew a lease — not one after another
    // (a large instance's round would outlast its leases).
    const routes = sent.map(({ route }) => route).filter((route) => route !== "claim");
    expect(routes).toEqual(["renew-many", ...Array(80).fill("renew")]);
    expect(inFlight.most).toBeGreaterThan(1);
  });

  it("refuses a malformed batch with 400, and renews nothing", async () => {
    const user = await createTestUser(admin);
    const lease = await new SessionLease(admin, { instanceId: "instance-d", ttlMs: 60_000 }).claim(user.record.id);
    const before = (await sessionOf(user.record.id)).lease_expires;
    const send = (body: unknown) => admin.send("/api/wavault/leases/renew-many", { method: "POST", body });
    const one = { user: lease.userId, generation: lease.generation };

    await expect(send({ owner: lease.owner, ttlMs: 60_000, leases: [one, { user: lease.userId }] })).rejects.toMatchObject({ status: 400 });
    await expect(send({ owner: lease.owner, ttlMs: 60_000, leases: Array(1001).fill(one) })).rejects.toMatchObject({ status: 400 });
    await expect(send({ owner: lease.owner, ttlMs: 60_000, leases: "all" })).rejects.toMatchObject({ status: 400 });
    await expect(send({ owner: lease.owner, leases: [one] })).rejects.toMatchObject({ status: 400 });
    expect((await sessionOf(user.record.id)).lease_expires).toBe(before);
  });
});
