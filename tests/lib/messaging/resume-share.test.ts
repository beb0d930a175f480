import path from "node:path";
import { describe, expect, it } from "vitest";

import { useResumeFixture } from "../../helpers/resume-fixture";
import { waitForStatus } from "../../helpers/whatsapp-runtime";

/**
 * Waiting sessions spread over the instances that resume them (ResumeShare over the
 * InstanceRegistry): an instance leaves a session to a live one that runs fewer, for a
 * while, and to any that takes sessions while its own starts keep failing.
 */
describe("sessions resumed by several instances", () => {
  const world = useResumeFixture();
  const { runtime, sessionOf, pairedThenDeployed, boot } = world;

  it("spreads waiting sessions over the instances: one holds back while another live instance runs fewer", async () => {
    const users = [await pairedThenDeployed("spread-1"), await pairedThenDeployed("spread-2"), await pairedThenDeployed("spread-3")];
    const running = (instance: typeof a) => users.filter((userId) => instance.manager.get(userId)).length;
    const a = runtime("spread-a", { resume: { batch: 1 } });
    a.registry.start(() => ({ accepting: true, acceptingNewLinks: true, maxConnections: 10 }));
    expect(await a.resumer.resumeOnce()).toBe(1); // alone: it takes one

    const b = runtime("spread-b");
    const standingOfB = { accepting: true, acceptingNewLinks: true, maxConnections: 10 };
    b.registry.start(() => standingOfB);
    await b.registry.beat();
    expect(await a.resumer.resumeOnce()).toBe(0); // B runs none: A leaves the sessions to it
    expect(await a.resumer.countWaiting()).toEqual({ waiting: 2, failing: 0 });

    standingOfB.accepting = false; // B is full
    await b.registry.beat();
    expect(await a.resumer.resumeOnce()).toBe(1);
    expect(running(a)).toBe(2);

    standingOfB.accepting = true;
    await b.registry.beat();
    expect(await a.resumer.resumeOnce()).toBe(0);
    expect(await b.resumer.resumeOnce()).toBe(1); // B takes the last one (A runs 2)
    expect(running(b)).toBe(1);
    for (const userId of users) await waitForStatus((a.manager.get(userId) ?? b.manager.get(userId))!, "ready");
  });

  it("takes a session it left to another instance once it has left it there longer than its patience (that one may be stuck)", async () => {
    const users = [await pairedThenDeployed("patience-1"), await pairedThenDeployed("patience-2")];
    const a = runtime("patience-a", { resume: { batch: 1, patienceMs: 1_500 } });
    expect(await a.resumer.resumeOnce()).toBe(1);
    const waiting = users.find((userId) => !a.manager.get(userId))!;
    // B announces that it takes sessions, runs none, and never resumes anything.
    const b = runtime("patience-b");
    b.registry.start(() => ({ accepting: true, acceptingNewLinks: true, maxConnections: 10 }));
    await b.registry.beat();
    expect(await a.resumer.resumeOnce()).toBe(0); // left to B, from now on
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await a.resumer.resumeOnce()).toBe(1); // B did not take it: A does
    await waitForStatus(a.manager.get(waiting)!, "ready");
  });

  it("an instance whose starts keep failing leaves waiting sessions to one whose starts work, and says so", async () => {
    const users = [await pairedThenDeployed("broken-1"), await pairedThenDeployed("broken-2")];
    const failures = async (userId: string) => Number((await sessionOf(userId)).resume_failures);
    const healthy = runtime("broken-healthy");
    healthy.registry.start(() => ({ accepting: true, acceptingNewLinks: true, maxConnections: 10 }));
    await healthy.registry.beat();
    // Its browser cannot start: every resume fails after its claim.
    const broken = runtime("broken", { resume: { backoffMs: 300 }, chromePath: path.join(world.dir, "no-such-chromium") });
    broken.resumer.start(60 * 60_000); // announced; its first round tries both (no instance runs fewer than it)
    await expect.poll(async () => [await failures(users[0]!), await failures(users[1]!)], { timeout: 20_000 }).toEqual([1, 1]);
    await new Promise((resolve) => setTimeout(resolve, 400)); // both due again

    // The third failure in a row: it leaves the rest to the healthy instance.
    expect(await broken.resumer.resumeOnce()).toBe(0);
    await broken.resumer.settled(); // its notes are written
    const counts = await Promise.all(users.map(failures));
    expect([...counts].sort()).toEqual([1, 2]); // it tried one of them again, not the other
    const left = users[counts.indexOf(1)]!;
    await expect
      .poll(async () => (await world.admin.collection("whatsapp_instances").getFirstListItem(world.admin.filter("owner = {:o}", { o: broken.leases.owner }))).accepting)
      .toBe(false);

    expect(await healthy.resumer.resumeOnce()).toBeGreaterThanOrEqual(1);
    await waitForStatus(healthy.manager.get(left)!, "ready");
  });

  it("two instances started from the configuration share the sessions a deploy leaves: two each", async () => {
    const instances = [boot("booted-a"), boot("booted-b")];
    const users: string[] = [];
    try {
      const live = async () => (await world.admin.send<{ instances: unknown[] }>("/api/wavault/instances", { method: "GET" })).instances.length;
      await expect.poll(live, { timeout: 30_000 }).toBe(2);
      // Sessions released one after another, as a rolling deploy releases them.
      for (const name of ["one", "two", "three", "four"]) users.push(await pairedThenDeployed(`booted-${name}`));
      const owners = async () => Promise.all(users.map(async (userId) => String((await sessionOf(userId)).lease_owner).split("/")[0]));
      await expect.poll(async () => (await owners()).filter(Boolean).length, { timeout: 60_000, interval: 250 }).toBe(4);
      expect((await owners()).sort()).toEqual(["booted-a", "booted-a", "booted-b", "booted-b"]);
    } finally {
      expect(await Promise.all(instances.map((instance) => instance.stop()))).toEqual([0, 0]);
    }
    for (const userId of users) expect(await sessionOf(userId)).toMatchObject({ lease_owner: "", keep_running: true });
    expect(await world.admin.collection("whatsapp_instances").getFullList()).toEqual([]);
  }, 120_000);
});
