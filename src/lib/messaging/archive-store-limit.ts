import type PocketBase from "pocketbase";

/** What PocketBase stores in a file field whose limit is 0 (unset): its own default. */
const POCKETBASE_DEFAULT_FILE_MAX_BYTES = 5 * 1024 * 1024;
/** How long a reading of the limit is used: a change in PocketBase's dashboard counts within this. */
const READ_EVERY_MS = 10 * 60_000;

/**
 * The largest archive PocketBase stores: the `archive` file field's size limit in the
 * sessions collection (SESSION_ARCHIVE_MAX_BYTES when the schema migration ran, or what
 * an operator set in the dashboard since), read from PocketBase itself (a superuser
 * client) so that the app never holds a limit of its own that disagrees.
 */
export class ArchiveStoreLimit {
  readonly #pb: PocketBase;
  readonly #collection: string;
  #reading: { at: number; bytes: Promise<number | null> } | null = null;

  constructor(pb: PocketBase, collection: string) {
    this.#pb = pb;
    this.#collection = collection;
  }

  /** The limit in bytes, or null when it cannot be read now (PocketBase alone decides then). */
  bytes(): Promise<number | null> {
    if (!this.#reading || Date.now() - this.#reading.at >= READ_EVERY_MS) {
      const reading = { at: Date.now(), bytes: this.#read() };
      this.#reading = reading;
      void reading.bytes.then((bytes) => {
        if (bytes === null && this.#reading === reading) this.#reading = null; // not kept: read again next time
      });
    }
    return this.#reading.bytes;
  }

  async #read(): Promise<number | null> {
    try {
      const collection = await this.#pb.collections.getOne(this.#collection, { fields: "fields", requestKey: null });
      const field = (collection.fields as { name: string; maxSize?: unknown }[]).find((candidate) => candidate.name === "archive");
      if (typeof field?.maxSize !== "number") return null;
      return field.maxSize > 0 ? field.maxSize : POCKETBASE_DEFAULT_FILE_MAX_BYTES;
    } catch {
      return null;
    }
  }
}
