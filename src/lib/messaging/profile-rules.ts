/**
 * What of a whatsapp-web.js LocalAuth profile (a Chromium user data dir) is archived.
 * This is the one keep/prune rule; paths are relative to the profile root, with "/".
 *
 * WhatsApp Web keeps its login (keys, device identity) and its chats in IndexedDB and a
 * few flags in localStorage; a profile restored with just those two comes back logged in
 * (tests/lib/messaging/session-archiver-chromium.test.ts proves it on a real Chromium).
 * Everything else Chromium rebuilds by itself, and most of it is large:
 *   - Default/Cache, Default/Code Cache, Default/GPUCache, Default/DawnGraphiteCache,
 *     Default/DawnWebGPUCache, GrShaderCache, ShaderCache, GraphiteDawnCache
 *   - Default/Service Worker (CacheStorage and ScriptCache: the bulk of a real profile)
 *   - Crashpad, component_crx_cache, Safe Browsing, BrowserMetrics, optimization and
 *     component data (OptimizationHints, OnDeviceHeadSuggestModel, hyphen-data, …)
 *   - history, favicons, sessions, cookies, preferences and other per-machine state
 * Lock files are pruned even inside kept directories: a restored profile must not look
 * locked by a browser that no longer exists.
 */
export const KEPT_PROFILE_PATHS: readonly string[] = ["Default/IndexedDB", "Default/Local Storage"];

/** File names pruned wherever they are: Chromium's Singleton* links and LevelDB's LOCK. */
export const PRUNED_LOCK_NAMES: readonly RegExp[] = [/^Singleton/, /^LOCK$/, /^lockfile$/, /\.lock$/i];

/** Whether `relativePath` (a file or directory) belongs in the archive. */
export function isKeptProfilePath(relativePath: string): boolean {
  const name = relativePath.slice(relativePath.lastIndexOf("/") + 1);
  if (PRUNED_LOCK_NAMES.some((pattern) => pattern.test(name))) return false;
  return KEPT_PROFILE_PATHS.some(
    (kept) => relativePath === kept || relativePath.startsWith(`${kept}/`) || kept.startsWith(`${relativePath}/`),
  );
}
