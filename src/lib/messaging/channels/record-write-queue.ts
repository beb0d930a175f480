/**
 * A channel's writes to its session record, run one at a time in the order they were
 * queued: a later status never lands before an earlier one, and the lease's release
 * comes after the last status. A failed write does not stop the ones after it.
 */
export class RecordWriteQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#tail.catch(() => {}).then(work);
    this.#tail = next;
    return next;
  }

  /** Resolves once every write queued so far has finished, failed ones included. */
  async idle(): Promise<void> {
    await this.#tail.catch(() => {});
  }
}
