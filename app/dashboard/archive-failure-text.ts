/** Why the session could not be saved, in words, from the failure's code. */
export function archiveFailureText(code: string): string {
  switch (code) {
    case "archive_over_store_limit":
      return "it has grown larger than the storage limit (SESSION_ARCHIVE_MAX_BYTES)";
    case "local_disk_failed":
      return "this server's disk is full or failing";
    case "pocketbase_unavailable":
      return "the session database could not be reached";
    default:
      return `an error (${code})`;
  }
}
