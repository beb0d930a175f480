/**
 * Runs the functions it is given at most `limit` at a time, in the order they came,
 * resolving each caller with its own function's result. Only leaf work (one file-system
 * call, say) should go through it: a function that itself waits for limited work would
 * hold a slot while it waits, and enough of them would wait for ever.
 */
export function concurrencyLimit(limit: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    // A slot freed while others wait goes straight to the first of them: counted free
    // until that one resumed, it could go to a caller arriving in between.
    if (running >= limit) await new Promise<void>((start) => waiting.push(start));
    else running += 1;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}
