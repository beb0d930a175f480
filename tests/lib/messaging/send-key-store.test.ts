import PocketBase from "pocketbase";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import {
  IdempotencyKeyInProgressError,
  IdempotencyKeyOutcomeUnknownError,
  IdempotencyKeyReusedError,
  IdempotentSends,
  IN_PROGRESS_MS,
  KEY_TTL_MS,
  messageFingerprint,
} from "../../../src/lib/messaging/idempotent-sends";
import { SendTimedOutError } from "../../../src/lib/messaging/channels/channel-errors";
import { SendKeyStore } from "../../../src/lib/messaging/send-key-store";
import { SessionLeasedElsewhereError } from "../../../src/lib/messaging/session-lease";
import { PocketBaseUnavailableError } from "../../../src/lib/messaging/session-store-errors";
import { UserSessionService } from "../../../src/lib/messaging/user-session-service";
import { adminClient, createTestUser, startIsolatedPocketBase, type TestUser } from "../../helpers/pocketbase";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { connectPaired, emulatorDeployments, waitForStatus } from "../../helpers/whatsapp-runtime";

/** A send that counts its calls and answers ids "wamid-1", "wamid-2", … */
function sender() {
  const counter = { calls: 0 };
  const send = async () => `wamid-${++counter.calls}`;
  return { counter, send };
}

describe("Idempotency-Keys recorded in PocketBase (SendKeyStore)", () => {
  const message = { to: "4915123456789@c.us", text: "Your order ships today" };
  let admin: PocketBase;
  let alice: TestUser;
  let bob: TestUser;

  afterEach(() => {
    vi.useRealTimers();
  });
  /** A store whose PocketBase traffic goes through a proxy the test can cut; `proxy.close()` after. */
  const storeBehindProxy = async () => {
    const proxy = await startPartitionProxy(admin.baseURL);
    const viaProxy = new PocketBase(proxy.url);
    viaProxy.authStore.save(admin.authStore.token, admin.authStore.record);
    return { proxy, store: new SendKeyStore(viaProxy, KEY_TTL_MS) };
  };

  beforeAll(async () => {
    admin = await adminClient();
    [alice, bob] = [await createTestUser(admin), await createTestUser(admin)];
  });

  it("outlives the process that sent: another one (a restart, the session moved) replays the send instead of sending", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const { counter, send } = sender();
    const first = await new IdempotentSends(store).send(alice.record.id, "order-1", message, send);
    expect(first).toEqual({ id: "wamid-1", replayed: false });

    const restarted = new IdempotentSends(store);
    expect(await restarted.send(alice.record.id, "order-1", message, send)).toEqual({ id: "wamid-1", replayed: true });
    await expect(restarted.send(alice.record.id, "order-1", { ...message, text: "Another text" }, send)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    // The refusal is not remembered as the key's: the first message still replays.
    expect(await restarted.send(alice.record.id, "order-1", message, send)).toEqual({ id: "wamid-1", replayed: true });
    expect(await restarted.send(bob.record.id, "order-1", message, send)).toEqual({ id: "wamid-2", replayed: false }); // Bob's own key
    expect(counter.calls).toBe(2);
  });

  it("lets a key be used afresh once its record has expired, also where it was replayed from the record", async () => {
    const store = new SendKeyStore(admin, 1_000);
    const { counter, send } = sender();
    await new IdempotentSends(store).send(alice.record.id, "short-lived", message, send);
    const restarted = new IdempotentSends(store);
    expect(await restarted.send(alice.record.id, "short-lived", message, send)).toEqual({ id: "wamid-1", replayed: true });
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // The expired record still holds the key's place in the unique index: the claim replaces it.
    expect(await restarted.send(alice.record.id, "short-lived", message, send)).toEqual({ id: "wamid-2", replayed: false });
    expect(await store.find(alice.record.id, "short-lived")).toMatchObject({ id: "wamid-2" });
    expect(counter.calls).toBe(2);
  });

  it("claims the key before sending: while the send runs, its record is there without a message id", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    let seenDuringSend: unknown;
    const sent = await new IdempotentSends(store).send(alice.record.id, "claimed-first", message, async () => {
      seenDuringSend = await store.find(alice.record.id, "claimed-first");
      return "wamid-c";
    });
    expect(sent).toEqual({ id: "wamid-c", replayed: false });
    expect(seenDuringSend).toEqual({ fingerprint: messageFingerprint(message), id: null, claimedAt: expect.any(Number) });
    expect(await store.find(alice.record.id, "claimed-first")).toMatchObject({ fingerprint: messageFingerprint(message), id: "wamid-c" });
  });

  it("sends once when two instances get the same key at once: the second is refused while the first is under way, then replays", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const { counter, send } = sender();
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let claimed!: () => void;
    const sending = new Promise<void>((resolve) => (claimed = resolve));
    const [a, b] = [new IdempotentSends(store), new IdempotentSends(store)];
    const first = a.send(alice.record.id, "both-at-once", message, async () => {
      claimed();
      await held;
      return send();
    });
    await sending;
    await expect(b.send(alice.record.id, "both-at-once", message, send)).rejects.toBeInstanceOf(IdempotencyKeyInProgressError);
    letGo();
    expect(await first).toEqual({ id: "wamid-1", replayed: false });
    expect(await b.send(alice.record.id, "both-at-once", message, send)).toEqual({ id: "wamid-1", replayed: true });
    expect(counter.calls).toBe(1);
  });

  it("refuses, and does not send, a key whose instance died mid-send (claimed, never completed); a completion later replays", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const { counter, send } = sender();
    const fingerprint = "0".repeat(64); // whatever the dead instance's message was: the claim alone blocks
    const claim = await store.claim(alice.record.id, "died-mid-send", fingerprint);
    expect(claim).toEqual({ claimed: true, claimId: expect.any(String) });
    const other = new IdempotentSends(store);
    await expect(other.send(alice.record.id, "died-mid-send", message, send)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);

    const sameMessage = await store.claim(bob.record.id, "died-mid-send", messageFingerprint(message));
    await expect(other.send(bob.record.id, "died-mid-send", message, send)).rejects.toBeInstanceOf(IdempotencyKeyInProgressError);
    await expect(other.send(bob.record.id, "died-mid-send", message, send)).rejects.toBeInstanceOf(IdempotencyKeyInProgressError); // not remembered as sent
    expect(counter.calls).toBe(0);
    // Claimed over 2 minutes ago and still no outcome: not "retry shortly" any more.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + IN_PROGRESS_MS + 5_000);
    await expect(other.send(bob.record.id, "died-mid-send", message, send)).rejects.toBeInstanceOf(IdempotencyKeyOutcomeUnknownError);
    vi.useRealTimers();
    expect(counter.calls).toBe(0);
    if (!sameMessage.claimed) throw new Error("Bob's claim was refused");
    await store.complete(sameMessage.claimId, "wamid-late");
    expect(await other.send(bob.record.id, "died-mid-send", message, send)).toEqual({ id: "wamid-late", replayed: true });
    expect(counter.calls).toBe(0);
  });

  it("undoes a claim whose answer was lost (PocketBase made it, the reply never came): nothing sent, and the key is free again", async () => {
    const { proxy, store } = await storeBehindProxy();
    try {
      const { counter, send } = sender();
      proxy.slowResponses("POST /api/collections/whatsapp_send_keys/records", 60_000);
      const attempt = new IdempotentSends(store).send(alice.record.id, "answer-lost", message, send);
      await expect.poll(() => proxy.heldResponses, { timeout: 10_000 }).toBe(1);
      const direct = new SendKeyStore(admin, KEY_TTL_MS);
      expect(await direct.find(alice.record.id, "answer-lost")).toMatchObject({ id: null }); // made, unanswered
      proxy.partition(); // the answer is lost with its connection
      await expect(attempt).rejects.toBeInstanceOf(PocketBaseUnavailableError);
      proxy.slowResponses("no such request", 0);
      proxy.heal();
      // Released in the background, by the id the claim chose: the retry sends (once).
      await expect.poll(() => direct.find(alice.record.id, "answer-lost"), { timeout: 15_000 }).toBeNull();
      expect(await new IdempotentSends(store).send(alice.record.id, "answer-lost", message, send)).toEqual({ id: "wamid-1", replayed: false });
      expect(counter.calls).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("releases the claim of a failed send, so that its retry sends, on any instance", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const failing = async (): Promise<string> => {
      throw new Error("WhatsApp did not take it");
    };
    await expect(new IdempotentSends(store).send(alice.record.id, "failed-once", message, failing)).rejects.toThrow("WhatsApp did not take it");
    expect(await store.find(alice.record.id, "failed-once")).toBeNull();
    const { counter, send } = sender();
    expect(await new IdempotentSends(store).send(alice.record.id, "failed-once", message, send)).toEqual({ id: "wamid-1", replayed: false });
    expect(counter.calls).toBe(1);
  });

  it("releases a failed send's claim later when PocketBase does not answer at once: the key sends again once it is back", async () => {
    const { proxy, store } = await storeBehindProxy();
    try {
      const failing = async (): Promise<string> => {
        proxy.partition(); // PocketBase out of reach just as the send fails
        throw new Error("WhatsApp did not take it");
      };
      await expect(new IdempotentSends(store).send(alice.record.id, "release-later", message, failing)).rejects.toThrow("WhatsApp did not take it");
      const direct = new SendKeyStore(admin, KEY_TTL_MS);
      expect(await direct.find(alice.record.id, "release-later")).toMatchObject({ id: null }); // still claimed
      proxy.heal();
      await expect.poll(() => direct.find(alice.record.id, "release-later"), { timeout: 15_000 }).toBeNull();
      const { counter, send } = sender();
      expect(await new IdempotentSends(store).send(alice.record.id, "release-later", message, send)).toEqual({ id: "wamid-1", replayed: false });
      expect(counter.calls).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("keeps the claim of a send WhatsApp Web did not answer in time, and gives it the send's late outcome", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const { counter, send } = sender();
    const slowSend = (late: Promise<string>) => async (): Promise<string> => {
      throw new SendTimedOutError(25_000, late);
    };
    // It goes out after all: the retry replays it.
    let deliver!: (id: string) => void;
    const delivered = new Promise<string>((resolve) => (deliver = resolve));
    const sends = new IdempotentSends(store);
    await expect(sends.send(alice.record.id, "late-out", message, slowSend(delivered))).rejects.toBeInstanceOf(SendTimedOutError);
    await expect(sends.send(alice.record.id, "late-out", message, send)).rejects.toBeInstanceOf(IdempotencyKeyInProgressError);
    deliver("wamid-late");
    await expect.poll(() => store.find(alice.record.id, "late-out")).toMatchObject({ id: "wamid-late" });
    expect(await sends.send(alice.record.id, "late-out", message, send)).toEqual({ id: "wamid-late", replayed: true });

    // It fails after all: the key is free, and the retry sends.
    let fail!: (error: Error) => void;
    const failed = new Promise<string>((_, reject) => (fail = reject));
    await expect(sends.send(alice.record.id, "late-fail", message, slowSend(failed))).rejects.toBeInstanceOf(SendTimedOutError);
    await expect(sends.send(alice.record.id, "late-fail", message, send)).rejects.toBeInstanceOf(IdempotencyKeyInProgressError);
    fail(new Error("WhatsApp did not take it"));
    await expect.poll(() => store.find(alice.record.id, "late-fail")).toBeNull();
    expect(await sends.send(alice.record.id, "late-fail", message, send)).toEqual({ id: "wamid-1", replayed: false });
    expect(counter.calls).toBe(1);
  });

  it("holds one record per user and key, and a user's keys go with the user", async () => {
    const store = new SendKeyStore(admin, KEY_TTL_MS);
    const carol = await createTestUser(admin);
    expect((await store.claim(carol.record.id, "once", "f".repeat(64))).claimed).toBe(true);
    expect(await store.claim(carol.record.id, "once", "f".repeat(64))).toEqual({
      claimed: false,
      stored: { fingerprint: "f".repeat(64), id: null, claimedAt: expect.any(Number) },
    });
    await admin.collection("users").delete(carol.record.id);
    const left = await admin.collection("whatsapp_send_keys").getList(1, 1, { filter: admin.filter("user = {:id}", { id: carol.record.id }) });
    expect(left.totalItems).toBe(0);
  });

  it("prunes the keys recorded before a date (the daily cleanup)", async () => {
    // A PocketBase of its own: a prune of the shared one would take other tests' keys.
    const isolated = await startIsolatedPocketBase();
    try {
      const own = await isolated.admin();
      const user = await createTestUser(own);
      const store = new SendKeyStore(own, KEY_TTL_MS);
      await store.claim(user.record.id, "to-prune", "f".repeat(64));
      await store.claim(user.record.id, "also", "f".repeat(64));
      expect(await store.pruneOlderThan(new Date(Date.now() - 60_000))).toBe(0);
      expect(await store.pruneOlderThan(new Date(Date.now() + 60_000))).toBe(2);
      expect(await store.find(user.record.id, "to-prune")).toBeNull();
    } finally {
      await isolated.dispose();
    }
  });

  it("sends nothing while PocketBase cannot be asked", async () => {
    const { counter, send } = sender();
    const unreachable = new IdempotentSends(new SendKeyStore(new PocketBase("http://127.0.0.1:1"), KEY_TTL_MS));
    await expect(unreachable.send(alice.record.id, "k", message, send)).rejects.toBeInstanceOf(PocketBaseUnavailableError);
    expect(counter.calls).toBe(0);
  });

  it("is the backend's alone: a user cannot read or write the keys", async () => {
    await new SendKeyStore(admin, KEY_TTL_MS).claim(alice.record.id, "private", "f".repeat(64));
    await expect(alice.pb.collection("whatsapp_send_keys").getList(1, 10)).rejects.toMatchObject({ status: 403 });
    await expect(
      alice.pb.collection("whatsapp_send_keys").create({ user: alice.record.id, idempotency_key: "mine", fingerprint: "f", message_id: "m" }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("an Idempotency-Key when the session moves to another instance", () => {
  const deployments = emulatorDeployments("wavault-send-keys-move-");

  it("replays a send retried on the instance the session moved to, which sends nothing", async () => {
    const [a, b] = [deployments.deploy("keys-a"), deployments.deploy("keys-b")];
    const user = await createTestUser(deployments.admin);
    const [to, text] = ["4915123456789@c.us", "sent once, wherever it is retried"];
    await connectPaired(a.manager, user.record.id);
    await waitForStatus(a.manager.get(user.record.id)!, "ready");
    const first = await new UserSessionService(a.runtime).sendText(user.record.id, to, text, "move-1");
    // Sent to an instance that does not run the session: refused (to be forwarded) before
    // its key store is asked. (A claim made there would stand in the owner's way should
    // its release fail.) B's key store here cannot be reached, so asking it would fail otherwise.
    const unreachableKeys = new IdempotentSends(new SendKeyStore(new PocketBase("http://127.0.0.1:1"), KEY_TTL_MS));
    await expect(
      new UserSessionService({ ...b.runtime, sends: unreachableKeys }).sendText(user.record.id, to, text, "move-2"),
    ).rejects.toBeInstanceOf(SessionLeasedElsewhereError);

    await a.manager.stopAll(); // a deploy: the profile archived, the lease released
    const moved = await b.manager.connect(user.record.id);
    await waitForStatus(moved, "ready"); // from the archive: no QR
    const retried = await new UserSessionService(b.runtime).sendText(user.record.id, to, text, "move-1");
    expect(retried).toEqual({ id: first.id, replayed: true });
    const sentOnB = (await moved.client!.pupPage!.evaluate(() =>
      (window as unknown as { __waEmulator: { sentMessages(): { body: string }[] } }).__waEmulator.sentMessages(),
    )) as { body: string }[];
    expect(sentOnB.filter((message) => message.body === text)).toEqual([]);
    await b.manager.stopAll();
  });
});
