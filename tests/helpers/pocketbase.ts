import { randomBytes, randomUUID } from "node:crypto";
import PocketBase, { type RecordModel } from "pocketbase";
import { inject } from "vitest";

import { startThrowawayPocketBase } from "../../scripts/lib/pocketbase-server";
import { parseEnv, type Env } from "../../src/env";
import { createServiceClient } from "../../src/lib/pocketbase/service-client";
import { createUserClient } from "../../src/lib/pocketbase/user-client";

/** The PocketBase server the global setup started for this run. */
export function testPocketBase() {
  return inject("pocketbase");
}

/** A superuser client for the test server, built the way the app builds its own. */
export function adminClient(): Promise<PocketBase> {
  const { url, adminEmail, adminPassword } = testPocketBase();
  return createServiceClient({ url, email: adminEmail, password: adminPassword });
}

/** The configuration of an instance on the shared test PocketBase, with a fresh key, plus `variables`. */
export function configuredEnv(variables: Record<string, string>): Env {
  const { adminEmail, adminPassword, url } = testPocketBase();
  return parseEnv({
    POCKETBASE_URL: url,
    POCKETBASE_ADMIN_EMAIL: adminEmail,
    POCKETBASE_ADMIN_PASSWORD: adminPassword,
    SESSION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    ...variables,
  });
}

/** Sets the sessions' archive field's size limit, as an operator would in PocketBase's dashboard (0: PocketBase's default). */
export async function setArchiveMaxSize(admin: PocketBase, maxSize: number): Promise<void> {
  const sessions = await admin.collections.getOne("whatsapp_sessions");
  const fields = sessions.fields.map((field) => (field.name === "archive" ? { ...field, maxSize } : field));
  await admin.collections.update(sessions.id, { fields });
}

export interface TestUser {
  record: RecordModel;
  email: string;
  password: string;
  token: string;
  /** A client acting as this user, subject to the API rules. */
  pb: PocketBase;
}

/** Creates a real user through PocketBase and signs in as them. */
export async function createTestUser(admin: PocketBase): Promise<TestUser> {
  const email = `user-${randomUUID()}@wavault.test`;
  const password = `pw-${randomUUID()}`;
  await admin.collection("users").create({ email, password, passwordConfirm: password, verified: true });
  const url = admin.baseURL;
  const login = new PocketBase(url);
  const { token, record } = await login.collection("users").authWithPassword(email, password);
  return { record, email, password, token, pb: createUserClient(url, token) };
}

/**
 * A PocketBase of its own for a test that needs an empty database or must stop the
 * server: same binary, migrations and hooks as the shared one, its own data dir (and
 * `env`, for what its migrations and hooks read: SESSION_ARCHIVE_MAX_BYTES, say).
 */
export function startIsolatedPocketBase(env?: Record<string, string>, options?: { rateLimitLoopback?: boolean }) {
  return startThrowawayPocketBase(testPocketBase().bin, {}, env, options);
}
