// /status – the operator's view of this instance: health, clients, stored sessions
import type { Metadata } from "next";
import { cookies } from "next/headers";

import { getEnv } from "@/env";
import { OPERATOR_COOKIE } from "@/lib/auth/auth-cookie";
import { isOperator, operatorSigningKey, superuserVersionVia } from "@/lib/auth/operator-auth";
import { getInstanceStatus } from "@/lib/messaging/instance-status";
import type { WhatsAppHealth } from "@/lib/messaging/whatsapp-health";
import { maxWaitingForQr } from "@/lib/messaging/whatsapp-runtime";
import { getServiceClient } from "@/lib/pocketbase/service-client";
import { signOutOperator } from "./actions";
import { OperatorForm } from "./operator-form";

export const metadata: Metadata = { title: "Instance status · wavault" };
export const dynamic = "force-dynamic";

export default async function StatusPage() {
  const env = getEnv();
  const cookie = (await cookies()).get(OPERATOR_COOKIE)?.value;
  const signingKey = operatorSigningKey(env.SESSION_ENCRYPTION_KEY);
  if (!(await isOperator(cookie, { statusToken: env.STATUS_TOKEN, signingKey, superuserVersion: superuserVersionVia(getServiceClient) }))) {
    return (
      <main className="narrow">
        <h1>Instance status</h1>
        <p className="muted">For operators: sign in to see this instance&apos;s health and WhatsApp clients.</p>
        <OperatorForm />
      </main>
    );
  }
  const { health, clients, storage, instances } = await getInstanceStatus(env);
  const rows: [string, string][] = [
    ["Healthy", health.healthy ? "Yes" : "No"],
    ["PocketBase reachable", health.pocketbase.reachable ? "Yes" : "No"],
    ["Active connections", `${health.connections.active} of ${health.connections.max} (${health.connections.utilizationPercent}%)`],
    ["Measured memory (PSS)", `${health.connections.memoryUsageMB} MB`],
    ["Waiting for a QR scan", `${health.connections.waitingForQr} (at most ${maxWaitingForQr(env)})`],
    ["Free disk for profiles", diskText(health.disk)],
    ["Estimated memory (250 MB a client)", clients ? `${clients.estimatedMemoryMB} MB` : "–"],
    ["Clients created / failed", clients ? `${clients.totalCreated} / ${clients.totalFailed}` : "–"],
    ["Average connection age", clients ? `${clients.averageConnectionAgeMinutes} min` : "–"],
    ["Stored sessions", storage ? String(storage.totalSessions) : "unknown"],
    ["Stored size (total / average / largest)", storage ? `${mb(storage.totalSizeBytes)} / ${mb(storage.averageSizeBytes)} / ${mb(storage.largestSizeBytes)}` : "unknown"],
    ["Oldest last activity", storage?.oldestLastActive ? new Date(storage.oldestLastActive).toLocaleString() : "–"],
    ["Sessions waiting to resume (all instances)", health.waitingToResume === null ? "unknown" : String(health.waitingToResume)],
    ["Of those, whose last resumes failed", health.failingToResume === null ? "unknown" : String(health.failingToResume)],
  ];
  return (
    <main className="page">
      <header className="page-header">
        <h1>Instance {health.instanceId}</h1>
        <form action={signOutOperator}>
          <button type="submit" className="button">
            Sign out
          </button>
        </form>
      </header>
      <div className="stack">
        <p className={`notice ${health.healthy ? "notice-ok" : "notice-error"}`} role="status">
          {health.healthy ? "This instance is healthy." : "This instance reports itself unhealthy (PocketBase unreachable, 90% of its connection cap in use, or its disk too full for another client)."}
        </p>
        <section className="card" aria-labelledby="numbers-title">
          <h2 id="numbers-title">Numbers</h2>
          <dl className="facts" data-testid="status-facts">
            {rows.map(([label, value]) => (
              <div key={label} className="fact">
                <dt>{label}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </section>
        <section className="card" aria-labelledby="instances-title">
          <h2 id="instances-title">Instances resuming sessions</h2>
          {instances === null ? (
            <p className="muted">Unknown: PocketBase cannot be read.</p>
          ) : instances.length === 0 ? (
            <p className="muted">None has announced itself: instances announce themselves while they resume sessions (SESSION_RESUME_INTERVAL_MS above 0).</p>
          ) : (
            <div className="table-scroll" role="region" aria-label="Instances" tabIndex={0}>
              <table className="table" data-testid="status-instances">
                <thead>
                  <tr>
                    <th scope="col">Instance</th>
                    <th scope="col">Address</th>
                    <th scope="col">Sessions</th>
                    <th scope="col">Takes more</th>
                    <th scope="col">Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {instances.map((instance) => (
                    <tr key={instance.owner}>
                      <td>
                        {instance.instanceId}
                        {instance.self ? " (this one)" : ""}
                      </td>
                      <td>{instance.url || "–"}</td>
                      <td>{`${instance.clients} of ${instance.maxConnections}`}</td>
                      <td>{instance.accepting ? (instance.acceptingNewLinks ? "Yes" : "Only linked sessions (no room for a QR wait)") : "No"}</td>
                      <td>{`${instance.seenSecondsAgo} s ago`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
    </main>
  );
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

function diskText(disk: WhatsAppHealth["disk"]): string {
  if (!disk) return "unknown";
  const free = `${disk.freeMB === null ? "not counted" : `${disk.freeMB.toLocaleString("en")} MB`}${disk.freeInodes === null ? "" : `, ${disk.freeInodes.toLocaleString("en")} inodes`}`;
  if (!disk.minFreeMB) return free;
  return `${free} (at least ${disk.minFreeMB.toLocaleString("en")} MB wanted${disk.enough ? "" : ": no new clients"})`;
}
