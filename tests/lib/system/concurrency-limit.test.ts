import { describe, expect, it } from "vitest";

import { concurrencyLimit } from "../../../src/lib/system/concurrency-limit";

/** A promise and the function that settles it. */
function deferred<T>() {
  let settle!: { resolve: (value: T) => void; reject: (error: Error) => void };
  const promise = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  return { promise, ...settle };
}

describe("concurrencyLimit", () => {
  it("runs at most `limit` functions at once, starting the rest in order as slots free", async () => {
    const limited = concurrencyLimit(2);
    const gates = [0, 1, 2, 3].map(() => deferred<number>());
    const started: number[] = [];
    const results = gates.map((gate, index) =>
      limited(() => {
        started.push(index);
        return gate.promise;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve(1);
    await expect.poll(() => started).toEqual([0, 1, 2]);
    gates[0]!.resolve(0);
    await expect.poll(() => started).toEqual([0, 1, 2, 3]);
    gates[2]!.resolve(2);
    gates[3]!.resolve(3);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3]);
  });

  it("hands a freed slot to the first waiting caller, never to one arriving while it resumes", async () => {
    for (let ticks = 0; ticks < 8; ticks++) {
      const limited = concurrencyLimit(1);
      let running = 0;
      let most = 0;
      const run = (work: Promise<void>) =>
        limited(async () => {
          running += 1;
          most = Math.max(most, running);
          await work;
          running -= 1;
        });
      const gate = deferred<void>();
      void run(gate.promise);
      void run(new Promise(() => {})); // waits for the slot, then holds it
      await new Promise((resolve) => setImmediate(resolve));
      gate.resolve();
      // A new caller some microtasks later: whenever it comes, the slot is taken.
      let later = Promise.resolve();
      for (let tick = 0; tick < ticks; tick++) later = later.then(() => {});
      void later.then(() => run(new Promise(() => {})));
      await new Promise((resolve) => setImmediate(resolve));
      expect(most).toBe(1);
    }
  });

  it("rejects only the caller whose function failed, and frees its slot", async () => {
    const limited = concurrencyLimit(1);
    const failing = limited(() => Promise.reject(new Error("boom")));
    const next = limited(async () => "ran");
    await expect(failing).rejects.toThrow("boom");
    expect(await next).toBe("ran");
  });
});
