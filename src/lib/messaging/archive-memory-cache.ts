/**
 * The memory tier of the session store: recent archives by user, least recently used
 * out first. Bounded twice: at most `maxBytes` of archives in all and `maxEntries`
 * archives; an archive larger than a quarter of `maxBytes` is never cached, so one
 * huge profile cannot flush everyone else's.
 */
export class ArchiveMemoryCache {
  readonly #entries = new Map<string, { sha256: string; archive: Buffer }>();
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  #bytes = 0;

  constructor(options: { maxBytes: number; maxEntries: number }) {
    this.#maxBytes = options.maxBytes;
    this.#maxEntries = options.maxEntries;
  }

  /** The cached archive of `userId` if it is the version `sha256`. */
  get(userId: string, sha256: string): Buffer | null {
    const entry = this.#entries.get(userId);
    if (!entry || entry.sha256 !== sha256) return null;
    this.#entries.delete(userId);
    this.#entries.set(userId, entry);
    return entry.archive;
  }

  /** Whether an archive of `bytes` would be kept at all. */
  accepts(bytes: number): boolean {
    return bytes <= this.#maxBytes / 4 && this.#maxEntries > 0;
  }

  set(userId: string, sha256: string, archive: Buffer): void {
    this.delete(userId);
    if (!this.accepts(archive.length)) return;
    this.#entries.set(userId, { sha256, archive });
    this.#bytes += archive.length;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes && this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.archive.length;
    }
  }

  delete(userId: string): void {
    const entry = this.#entries.get(userId);
    if (!entry) return;
    this.#entries.delete(userId);
    this.#bytes -= entry.archive.length;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.#entries.size, bytes: this.#bytes };
  }
}
