import type { Lease, SessionLease } from "./session-lease";

export interface HeldLease {
  lease: Lease;
  /** Stops renewing and gives the lease up (failures ignored: it then expires). */
  release(): Promise<void>;
}

/**
 * Claims a user's lease for a tool that works on the session for a while (the
 * migration and re-encryption scripts) and renews it every third of its TTL until
 * released, however long the work takes (`keepLastActive`: the renewals leave the
 * session's last_active as it is). Renewal failures are not reported: should the
 * lease be lost, the tool's fenced upload is refused (LeaseLostError). `onlyIfArchived`:
 * see SessionLease.claim.
 * @throws SessionLeasedElsewhereError when an instance holds the session, and what claim throws
 */
export async function holdLease(
  leases: SessionLease,
  userId: string,
  options: { keepLastActive?: boolean; onlyIfArchived?: boolean } = {},
): Promise<HeldLease> {
  const lease = await leases.claim(userId, { onlyIfArchived: options.onlyIfArchived });
  let renewing = false;
  const timer = setInterval(() => {
    if (renewing) return;
    renewing = true;
    leases
      .renew(lease, options)
      .catch(() => {})
      .finally(() => (renewing = false));
  }, Math.max(100, Math.floor(leases.ttlMs / 3)));
  timer.unref();
  return {
    lease,
    release: async () => {
      clearInterval(timer);
      await leases.release(lease).catch(() => {});
    },
  };
}
