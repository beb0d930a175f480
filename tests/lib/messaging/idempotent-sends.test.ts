import { afterEach, describe, expect, it, vi } from "vitest";

import { IdempotencyKeyReusedError, IdempotentSends } from "../../../src/lib/messaging/idempotent-sends";

/** A send that counts its calls and answers ids "m1", "m2", … (or fails while `failing`). */
function sender() {
  const counter = { calls: 0, failing: false };
  const send = async () => {
    counter.calls += 1;
    if (counter.failing) throw new Error("WhatsApp did not take it");
    return `m${counter.calls}`;
  };
  return { counter, send };
}

describe("IdempotentSends", () => {
  const message = { to: "4915123456789@c.us", text: "Your order ships today" };
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends once per user, key and message; another user's same key is theirs", async () => {
    const sends = new IdempotentSends();
    const { counter, send } = sender();
    expect(await sends.send("alice", "k1", message, send)).toEqual({ id: "m1", replayed: false });
    expect(await sends.send("alice", "k1", message, send)).toEqual({ id: "m1", replayed: true });
    expect(await sends.send("bob", "k1", message, send)).toEqual({ id: "m2", replayed: false });
    await expect(sends.send("alice", "k1", { ...message, text: "Something else" }, send)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    await expect(sends.send("alice", "k1", { ...message, to: "4915100000000@c.us" }, send)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(counter.calls).toBe(2);
  });

  it("forgets a failed send, so that its retry sends", async () => {
    const sends = new IdempotentSends();
    const { counter, send } = sender();
    counter.failing = true;
    await expect(sends.send("alice", "k1", message, send)).rejects.toThrow("WhatsApp did not take it");
    counter.failing = false;
    expect(await sends.send("alice", "k1", message, send)).toEqual({ id: "m2", replayed: false });
  });

  it("remembers a key for a day", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const sends = new IdempotentSends();
    const { send } = sender();
    await sends.send("alice", "k1", message, send);
    vi.setSystemTime(Date.now() + 23 * 60 * 60_000);
    expect((await sends.send("alice", "k1", message, send)).replayed).toBe(true);
    vi.setSystemTime(Date.now() + 2 * 60 * 60_000);
    expect(await sends.send("alice", "k1", message, send)).toEqual({ id: "m2", replayed: false });
  });

  it("holds at most 2,000 keys a user and 50,000 in all, forgetting the oldest first", async () => {
    const sends = new IdempotentSends();
    const { send } = sender();
    await sends.send("bob", "bob-1", message, send);
    for (let i = 0; i <= 2_000; i++) await sends.send("alice", `k${i}`, message, send);
    expect((await sends.send("alice", "k2000", message, send)).replayed).toBe(true);
    expect((await sends.send("alice", "k1", message, send)).replayed).toBe(true);
    expect((await sends.send("bob", "bob-1", message, send)).replayed).toBe(true); // alice's volume leaves bob's keys alone
    expect((await sends.send("alice", "k0", message, send)).replayed).toBe(false); // forgotten

    for (let user = 0; user < 25; user++) for (let i = 0; i < 2_000; i++) await sends.send(`user-${user}`, `k${i}`, message, send);
    expect((await sends.send("bob", "bob-1", message, send)).replayed).toBe(false); // the oldest key of all: forgotten
    expect((await sends.send("user-24", "k1999", message, send)).replayed).toBe(true);
  });
});
