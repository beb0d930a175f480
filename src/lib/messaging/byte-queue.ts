/**
 * Bytes that arrive in pieces and leave in other-sized pieces, without being copied:
 * `take` hands back views of the pieces it was given.
 */
export class ByteQueue {
  #pieces: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#pieces.push(bytes);
    this.#length += bytes.length;
  }

  /** The first `count` bytes (at most `length`), as views of the queued pieces. */
  take(count: number): Buffer[] {
    const taken: Buffer[] = [];
    let left = Math.min(count, this.#length);
    this.#length -= left;
    while (left > 0) {
      const head = this.#pieces[0]!;
      if (head.length <= left) {
        taken.push(head);
        this.#pieces.shift();
        left -= head.length;
      } else {
        taken.push(head.subarray(0, left));
        this.#pieces[0] = head.subarray(left);
        left = 0;
      }
    }
    return taken;
  }

  /** The first `count` bytes as one buffer (a copy only when they span pieces). */
  takeJoined(count: number): Buffer {
    const taken = this.take(count);
    return taken.length === 1 ? taken[0]! : Buffer.concat(taken);
  }
}
