import PocketBase from "pocketbase";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { readSessionSummary } from "../../../src/lib/messaging/session-summary";
import { PocketBaseUnavailableError } from "../../../src/lib/messaging/session-store-errors";
import { limitRequestTime } from "../../../src/lib/pocketbase/request-timeout";
import { createServiceClient } from "../../../src/lib/pocketbase/service-client";
import { startPartitionProxy } from "../../helpers/partition-proxy";
import { adminClient, createTestUser, testPocketBase } from "../../helpers/pocketbase";

/**
 * The service client against a PocketBase that stops answering: its path goes through a
 * proxy that, once partitioned, takes connections and never answers (a hung server, or
 * a network that drops packets).
 */
describe("the service client's request time limit", () => {
  let proxy: Awaited<ReturnType<typeof startPartitionProxy>>;
  let admin: PocketBase;
  let client: PocketBase;

  beforeAll(async () => {
    admin = await adminClient();
    proxy = await startPartitionProxy(testPocketBase().url);
    const { adminEmail, adminPassword } = testPocketBase();
    client = await createServiceClient({ url: proxy.url, email: adminEmail, password: adminPassword, requestTimeoutMs: 1_000 });
  });
  afterEach(() => proxy.heal());
  /** Partitions the path; the kept-alive connection it cuts fails a first request at once (not what is tested). */
  const partition = async () => {
    proxy.partition();
    await client.send("/api/health", { requestKey: null }).catch(() => {});
  };
  afterAll(async () => {
    await proxy?.close();
  });

  it("gives up on a PocketBase that stops answering with a typed error, and works again once it answers", async () => {
    const user = await createTestUser(admin);
    await partition();
    const started = Date.now();
    await expect(readSessionSummary(client, user.record.id)).rejects.toBeInstanceOf(PocketBaseUnavailableError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // the limit ended it, not a cut connection
    proxy.heal();
    expect(await readSessionSummary(client, user.record.id)).toBeNull(); // no session yet: read, not failed
  }, 10_000);

  it("limits a client built with the SDK's defaults too, as the sign-in clients are", async () => {
    // The SDK's auto-cancellation, on by default, gives each request a signal of its own first.
    const fresh = limitRequestTime(new PocketBase(proxy.url), 1_000);
    await partition();
    await expect(fresh.health.check()).rejects.toMatchObject({ status: 0 });
  }, 10_000);

  it("leaves a request that has a limit of its own to it", async () => {
    await partition();
    const started = Date.now();
    await expect(client.send("/api/health", { signal: AbortSignal.timeout(2_500), requestKey: null })).rejects.toMatchObject({ status: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_400); // not cut at the default 1 s
  }, 10_000);
});
