/**
 * `work`'s outcome, or `late()`'s value once `ms` have passed without one. The timer is
 * cleared either way; `work` itself goes on, unwatched (settle or fail it elsewhere).
 */
export async function settleWithin<T, L>(work: Promise<T>, ms: number, late: () => L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<L>((resolve) => (timer = setTimeout(() => resolve(late()), ms)));
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
