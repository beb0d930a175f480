import type { FileHandle } from "node:fs/promises";

/** The most buffers one writev call takes (Linux IOV_MAX). */
const IOV_MAX = 1024;

/** Writes `buffers` in order, without copying them into one. */
export async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  for (let start = 0; start < buffers.length; start += IOV_MAX) {
    const batch = buffers.slice(start, start + IOV_MAX);
    const expected = batch.reduce((sum, buffer) => sum + buffer.length, 0);
    const { bytesWritten } = await handle.writev(batch);
    // A regular file writes short only when it cannot grow (a full disk, a size limit).
    if (bytesWritten !== expected) {
      throw Object.assign(new Error(`short write: ${bytesWritten} of ${expected} bytes (disk full?)`), { code: "ENOSPC", errno: -28, syscall: "writev" });
    }
  }
}
