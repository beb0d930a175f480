import path from "node:path";
import { describe, expect, it } from "vitest";

import { parseEnv } from "../../../src/env";
import { SessionNotWantedError } from "../../../src/lib/messaging/session-lease";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { getWhatsAppHealth } from "../../../src/lib/messaging/whatsapp-health";
import { newKeyRing } from "../../helpers/crafted-archive";
import { writeFakeProfile } from "../../helpers/fake-profile";
import { useResumeFixture } from "../../helpers/resume-fixture";
import { closed, connectPaired, waitForStatus } from "../../helpers/whatsapp-runtime";

const SESSIONS = "whatsapp_sessions";

/**
 * Sessions come back by themselves: a SessionResumer starts the sessions that are to
 * keep running and that no instance runs (how they spread over several instances:
 * resume-share.test.ts).
 */
describe("SessionResumer against the emulator", () => {
  const world = useResumeFixture();
  const { runtime, newUser, sessionOf, pairedThenDeployed, statusesOf, boot } = world;

  it("brings a session stopped by a deploy back on another instance, ready without a QR and without a connect", async () => {
    const userId = await pairedThenDeployed("deploy");
    expect(await sessionOf(userId)).toMatchObject({ keep_running: true, lease_owner: "", status: "disconnected" });

    const next = runtime("deploy-after");
    const env = parseEnv({
      POCKETBASE_URL: world.pocketbase.url,
      POCKETBASE_ADMIN_EMAIL: world.pocketbase.adminEmail,
      POCKETBASE_ADMIN_PASSWORD: world.pocketbase.adminPassword,
      SESSION_ENCRYPTION_KEY: world.keys.current.key.toString("base64"),
    });
    expect((await getWhatsAppHealth(env, next.runtime)).waitingToResume).toBe(1); // operators see it waiting
    const seen = statusesOf(next.manager, userId);
    expect(await next.resumer.resumeOnce()).toBe(1);
    const channel = next.manager.get(userId)!;
    await waitForStatus(channel, "ready");
    seen.stop();
    expect(seen.statuses).not.toContain("qr_ready");
    await channel.statusRecorded();
    expect(await sessionOf(userId)).toMatchObject({ status: "ready", keep_running: true, lease_owner: expect.stringMatching(/^instance-deploy-after\//) });
    expect(await next.resumer.resumeOnce()).toBe(0); // running: nothing to do
    expect(await next.resumer.countWaiting()).toEqual({ waiting: 0, failing: 0 });
    await next.events.flushed(userId);
    const claimed = (await next.events.list(userId, 100)).filter((event) => event.event === "lease_claimed");
    expect(claimed[0]!.data).toMatchObject({ resumed: true }); // the history says it came back by itself
    await next.manager.stopAll();
  });

  it("leaves alone a session its user disconnected, on the instance that ran it or on one that did not", async () => {
    const stoppedHere = await newUser();
    const first = runtime("disconnect");
    await connectPaired(first.manager, stoppedHere);
    await first.manager.disconnect(stoppedHere);
    expect(await sessionOf(stoppedHere)).toMatchObject({ keep_running: false });

    // Stopped by a deploy, then disconnected through an instance with no client for it.
    const stoppedElsewhere = await pairedThenDeployed("disconnect-elsewhere");
    const other = runtime("disconnect-other");
    const view = await new UserSessionService(other.runtime).disconnect(stoppedElsewhere);
    expect(view).toMatchObject({ status: "disconnected", keepRunning: false });
    expect(await sessionOf(stoppedElsewhere)).toMatchObject({ keep_running: false, lease_owner: "" });

    expect(await other.resumer.resumeOnce()).toBe(0);
    expect(other.manager.get(stoppedHere)).toBeUndefined();
    expect(other.manager.get(stoppedElsewhere)).toBeUndefined();
  });

  it("takes over a session of an instance that died once its lease lapses", async () => {
    const userId = await pairedThenDeployed("crash");
    const record = await sessionOf(userId);
    // A crashed owner: the lease is held, unreleased, and lapses on its own.
    await world.admin.collection(SESSIONS).update(record.id, {
      lease_owner: "crashed/0000",
      lease_generation: record.lease_generation + 1,
      lease_expires: new Date(Date.now() + 1_500).toISOString(),
    });

    const heir = runtime("crash-heir");
    expect(await heir.resumer.resumeOnce()).toBe(0); // still leased
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await heir.resumer.resumeOnce()).toBe(1);
    await waitForStatus(heir.manager.get(userId)!, "ready");
    await heir.manager.stopAll();
  });

  it("starts a session again after its browser crashed", async () => {
    const userId = await pairedThenDeployed("browser");
    const instance = runtime("browser-crash", { resume: { stableMs: 300 } });
    await instance.resumer.resumeOnce();
    const channel = instance.manager.get(userId)!;
    await waitForStatus(channel, "ready");
    await new Promise((resolve) => setTimeout(resolve, 600)); // up long enough to count as a success

    const ended = closed(channel);
    process.kill(channel.browserPid!, "SIGKILL");
    await ended;
    expect(await instance.resumer.resumeOnce()).toBe(1);
    await waitForStatus(instance.manager.get(userId)!, "ready");
    await instance.manager.stopAll();
  });

  it("ends a client whose WhatsApp Web page crashed while its browser lived on, and starts the session again", async () => {
    const userId = await pairedThenDeployed("page");
    const instance = runtime("page-crash", { resume: { stableMs: 300 } });
    await instance.resumer.resumeOnce();
    const channel = instance.manager.get(userId)!;
    await waitForStatus(channel, "ready");
    await new Promise((resolve) => setTimeout(resolve, 600));

    // The page's renderer dies (as the OOM killer picks renderers first); the browser stays up.
    const ended = closed(channel);
    const pid = channel.browserPid!;
    const cdp = await channel.client!.pupPage!.createCDPSession();
    void cdp.send("Page.crash").catch(() => {});
    await ended;
    expect(channel.status).toBe("disconnected");
    expect(() => process.kill(pid, 0)).toThrow(); // the browser went with it
    expect(await sessionOf(userId)).toMatchObject({ keep_running: true, lease_owner: "" });
    expect(await instance.resumer.resumeOnce()).toBe(1);
    await waitForStatus(instance.manager.get(userId)!, "ready");
    await instance.manager.stopAll();
  });

  it("waits longer and longer before starting again a session that keeps dying soon after ready, on every instance", async () => {
    const userId = await pairedThenDeployed("flaky");
    const timings = { backoffMs: 1_500, stableMs: 60_000 };
    const [a, b] = [runtime("flaky-a", { resume: timings }), runtime("flaky-b", { resume: timings })];
    const failures = async () => Number((await sessionOf(userId)).resume_failures);
    const crashOnceReady = async (instance: typeof a, failuresAfter: number) => {
      const channel = instance.manager.get(userId)!;
      await waitForStatus(channel, "ready");
      const ended = closed(channel);
      process.kill(channel.browserPid!, "SIGKILL");
      await ended;
      await expect.poll(failures).toBe(failuresAfter); // the failure is written down
    };
    expect(await a.resumer.resumeOnce()).toBe(1);
    await crashOnceReady(a, 1);
    // The wait is the session's, not A's: B, which saw no failure, waits too, without
    // even trying (a refused try would count as a failed start).
    expect(await b.resumer.resumeOnce()).toBe(0); // 1.5 s to wait
    expect(await a.resumer.resumeOnce()).toBe(0);
    expect(await b.resumer.countWaiting()).toEqual({ waiting: 1, failing: 1 }); // what health shows operators
    expect(b.manager.getStats()).toMatchObject({ totalCreated: 0, totalFailed: 0 });
    await expect(b.manager.connect(userId, { resume: true })).rejects.toBeInstanceOf(SessionNotWantedError); // the claim checks it too
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await b.resumer.resumeOnce()).toBe(1);
    await crashOnceReady(b, 2);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await a.resumer.resumeOnce()).toBe(0); // now 3 s
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await a.resumer.resumeOnce()).toBe(1);
    await waitForStatus(a.manager.get(userId)!, "ready");
    await a.resumer.stop(); // a deploy: no failure
    await a.manager.stopAll();
    expect(await failures()).toBe(2);

    // A user's own connect that reaches ready ends the run of failures.
    const channel = await b.manager.connect(userId);
    await waitForStatus(channel, "ready");
    await channel.statusRecorded();
    expect(await failures()).toBe(0);
    expect((await sessionOf(userId)).resume_after).toBe("");
  });

  it("forgets a resumed session's failures once it has stayed up, and a user's disconnect forgets them too", async () => {
    const userId = await pairedThenDeployed("steady");
    const record = await sessionOf(userId);
    const failedBefore = { resume_failures: 3, resume_after: new Date(Date.now() - 1_000).toISOString() };
    await world.admin.collection(SESSIONS).update(record.id, failedBefore);
    const instance = runtime("steady", { resume: { stableMs: 1_500 } });
    expect(await instance.resumer.resumeOnce()).toBe(1);
    await waitForStatus(instance.manager.get(userId)!, "ready");
    expect(await sessionOf(userId)).toMatchObject({ resume_failures: 3 }); // ready is not enough: it must stay up
    await expect.poll(async () => Number((await sessionOf(userId)).resume_failures), { timeout: 10_000 }).toBe(0);

    await world.admin.collection(SESSIONS).update(record.id, failedBefore);
    await new UserSessionService(instance.runtime).disconnect(userId);
    expect(await sessionOf(userId)).toMatchObject({ keep_running: false, resume_failures: 0, resume_after: "" });
  });

  it("starts nothing for a session its user stopped after a resume round had listed it", async () => {
    const userId = await pairedThenDeployed("late");
    const other = runtime("late-other");
    await new UserSessionService(other.runtime).disconnect(userId);
    // What a round that looked before the disconnect then does: its start is refused in
    // the claim's transaction, and nothing is left behind.
    const instance = runtime("late");
    await expect(instance.manager.connect(userId, { resume: true })).rejects.toBeInstanceOf(SessionNotWantedError);
    expect(instance.manager.get(userId)).toBeUndefined();
    expect(await sessionOf(userId)).toMatchObject({ keep_running: false, lease_owner: "", status: "disconnected" });
  });

  it("never mixes a resume with a user's own connect: each starts or joins only its own kind", async () => {
    const unmarked = await newUser(); // never ready: nothing to resume
    const instance = runtime("mixed");
    // A resume under way when the user connects: the resume is refused, the user's connect starts anew.
    const [resumed, connected] = await Promise.allSettled([
      instance.manager.connect(unmarked, { resume: true }),
      instance.manager.connect(unmarked),
    ]);
    expect((resumed as PromiseRejectedResult).reason).toBeInstanceOf(SessionNotWantedError);
    const channel = (connected as PromiseFulfilledResult<Awaited<ReturnType<typeof instance.manager.connect>>>).value;
    await waitForStatus(channel, "qr_ready"); // the user's, waiting for a scan
    // A resume while the user's client runs is refused too, and leaves it alone.
    await expect(instance.manager.connect(unmarked, { resume: true })).rejects.toBeInstanceOf(SessionNotWantedError);
    expect(instance.manager.get(unmarked)).toBe(channel);
    expect(channel.stopping).toBe(false);
  });

  it("a disconnect unmarks a session whose lease this instance still holds from a client that is gone", async () => {
    const userId = await pairedThenDeployed("stale-own");
    const instance = runtime("stale-own");
    await instance.leases.claim(userId); // as if its client's release had not got through
    const view = await new UserSessionService(instance.runtime).disconnect(userId);
    expect(view.keepRunning).toBe(false);
    expect(await sessionOf(userId)).toMatchObject({ keep_running: false, lease_owner: "" });
  });

  /** A user whose stored profile has no WhatsApp login in it (unlinked on the phone), marked to keep running. */
  const unlinkedButMarked = async (name: string) => {
    const userId = await newUser();
    const seeded = runtime(`${name}-seed`);
    const profile = path.join(world.dir, `${name}-profile`);
    await writeFakeProfile(profile);
    const lease = await seeded.leases.claim(userId);
    await seeded.store.saveSession(userId, await seeded.archiver.archiveSession(profile), undefined, {}, lease);
    await seeded.store.recordStatus(lease, "disconnected", { keepRunning: true });
    await seeded.leases.release(lease);
    return userId;
  };

  it("stops and unmarks a resumed session that asks for a QR (its stored login no longer works)", async () => {
    const userId = await unlinkedButMarked("qr");
    const instance = runtime("qr");
    expect(await instance.resumer.resumeOnce()).toBe(1);
    const channel = instance.manager.get(userId)!;
    await closed(channel);
    expect(await sessionOf(userId)).toMatchObject({ keep_running: false, status: "disconnected", lease_owner: "" });
    expect(await instance.resumer.resumeOnce()).toBe(0);
  });

  it("leaves a resumed session that asks for a QR running when its user's own connect joined it: the QR is theirs", async () => {
    const userId = await unlinkedButMarked("qr-joined");
    const instance = runtime("qr-joined");
    const resuming = instance.resumer.resumeOnce();
    while (!instance.manager.get(userId)) await new Promise((resolve) => setTimeout(resolve, 10));
    const channel = instance.manager.get(userId)!;
    expect(channel.status).not.toBe("qr_ready");
    const joined = await instance.manager.connect(userId); // the user presses Connect meanwhile
    expect(joined).toBe(channel);
    expect(await resuming).toBe(1);
    await waitForStatus(channel, "qr_ready");
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the resume's follow-up has seen the QR
    expect([channel.stopping, channel.status, instance.manager.get(userId)]).toEqual([false, "qr_ready", channel]);
    await instance.manager.stopAll();
  });

  it("starts no more sessions than the instance has room for, and leaves the rest to others", async () => {
    const users = [await pairedThenDeployed("room-1"), await pairedThenDeployed("room-2")];
    const small = runtime("room-small", { maxConnections: 1 });
    expect(await small.resumer.resumeOnce()).toBe(1);
    const [running, waiting] = small.manager.get(users[0]!) ? users : [...users].reverse();
    expect(await sessionOf(waiting!)).toMatchObject({ keep_running: true, lease_owner: "" });

    const other = runtime("room-other");
    expect(await other.resumer.resumeOnce()).toBe(1);
    expect(other.manager.get(waiting!)).toBeDefined();
    await waitForStatus(small.manager.get(running!)!, "ready");
    await waitForStatus(other.manager.get(waiting!)!, "ready");
    await small.manager.stopAll();
    await other.manager.stopAll();
  });

  it("a resume on an instance that cannot decrypt the archive fails without a QR and leaves the session marked for one that can", async () => {
    const userId = await pairedThenDeployed("wrong-key");
    // Its SESSION_ENCRYPTION_KEY is another: a configuration mistake, not the session's fault.
    const misconfigured = runtime("wrong-key", { keys: newKeyRing(), resume: { backoffMs: 300 } });
    const seen = statusesOf(misconfigured.manager, userId);
    expect(await misconfigured.resumer.resumeOnce()).toBe(0);
    seen.stop();
    await misconfigured.resumer.settled();
    expect(seen.statuses).not.toContain("qr_ready");
    expect(await sessionOf(userId)).toMatchObject({ keep_running: true, lease_owner: "", resume_failures: 1 });

    await new Promise((resolve) => setTimeout(resolve, 400)); // due again
    const configured = runtime("right-key");
    expect(await configured.resumer.resumeOnce()).toBe(1);
    await waitForStatus(configured.manager.get(userId)!, "ready");
  });

  it("runs rounds back to back while sessions are waiting, not one batch per interval", async () => {
    const users = [await pairedThenDeployed("busy-1"), await pairedThenDeployed("busy-2")];
    const instance = runtime("busy", { resume: { batch: 1 } });
    instance.resumer.start(60 * 60_000); // the next interval is an hour away
    try {
      await expect.poll(() => users.filter((userId) => instance.manager.get(userId)).length, { timeout: 20_000 }).toBe(2);
    } finally {
      await instance.resumer.stop();
    }
  });

  it("resumes from the server's start on: a new instance brings a deployed session back by itself", async () => {
    const userId = await pairedThenDeployed("boot");
    const instance = boot("booted-instance");
    let exitCode: number | null = null;
    try {
      await expect
        .poll(async () => (await sessionOf(userId)).status, { timeout: 60_000, interval: 250 })
        .toBe("ready");
      expect((await sessionOf(userId)).lease_owner).toMatch(/^booted-instance\//);
      // It announces itself to the other instances while it resumes sessions...
      expect(await world.admin.collection("whatsapp_instances").getFullList()).toEqual([
        expect.objectContaining({ owner: (await sessionOf(userId)).lease_owner, instance_id: "booted-instance", accepting: true }),
      ]);
    } finally {
      exitCode = await instance.stop();
    }
    expect(exitCode).toBe(0);
    expect(await sessionOf(userId)).toMatchObject({ lease_owner: "", keep_running: true }); // a deploy's stop: it stays marked
    expect(await world.admin.collection("whatsapp_instances").getFullList()).toEqual([]); // ...and leaves when it stops
  }, 90_000);
});
