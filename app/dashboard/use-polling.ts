"use client";
import { useEffect } from "react";

/**
 * Runs `poll` now and then `intervalMs` after each answer (never two at once), skips
 * while the tab is hidden, and aborts the one in flight when the component goes.
 * `poll` must be stable (useCallback).
 */
export function usePolling(poll: (signal: AbortSignal) => Promise<void>, intervalMs: number): void {
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (document.visibilityState === "visible") await poll(controller.signal).catch(() => {});
      if (!controller.signal.aborted) timer = setTimeout(() => void tick(), intervalMs);
    };
    timer = setTimeout(() => void tick(), 0);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [poll, intervalMs]);
}
