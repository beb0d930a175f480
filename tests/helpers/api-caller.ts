import { setTimeout as delay } from "node:timers/promises";
import { expect } from "vitest";

import { EmulatedPhone } from "./emulated-phone";
import type { NextServer } from "./next-server";

// A JSON answer, read loosely: the assertions say what shape it must have.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

/** A client of one server, acting as one user (or nobody). */
export function caller(server: () => NextServer, token?: string) {
  return async (method: string, route: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${server().url}${route}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Json, headers: response.headers };
  };
}

/** Asserts that each route acting on the running client (with a valid body) answers `status` and `code`. */
export async function expectEveryClientRoute(call: ReturnType<typeof caller>, status: number, code: string): Promise<void> {
  for (const [method, route, body] of [
    ["POST", "/api/whatsapp/connect"],
    ["POST", "/api/whatsapp/messages", { to: "+4915123456789", text: "hi" }],
    ["POST", "/api/whatsapp/disconnect"],
    ["POST", "/api/whatsapp/logout"],
  ] as const) {
    const answer = await call(method, route, body);
    expect({ route, status: answer.status, code: answer.body.error?.code }).toEqual({ route, status, code });
  }
}

/** Polls the status route until `predicate` holds. */
export async function statusUntil(call: ReturnType<typeof caller>, predicate: (body: Json) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await call("GET", "/api/whatsapp/status");
    if (predicate(body)) return body;
    if (Date.now() > deadline) throw new Error(`status never matched; last: ${JSON.stringify(body).slice(0, 300)}`);
    await delay(200);
  }
}

/**
 * Connects a user and brings the session to ready: from its stored session (no QR), or
 * by pairing the emulated phone when the server shows a QR. Returns whether it paired.
 */
export async function connectReady(call: ReturnType<typeof caller>, profileDir: string): Promise<{ paired: boolean }> {
  expect((await call("POST", "/api/whatsapp/connect")).status).toBe(202);
  const started = await statusUntil(call, (body) => ["qr_ready", "ready"].includes(body.status));
  if (started.status === "ready") return { paired: false };
  const phone = await EmulatedPhone.attach(profileDir);
  try {
    await phone.pair();
  } finally {
    await phone.detach();
  }
  await statusUntil(call, (body) => body.status === "ready");
  return { paired: true };
}
