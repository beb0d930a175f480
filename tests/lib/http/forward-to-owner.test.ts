import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { forwardToOwner } from "../../../src/lib/http/forward-to-owner";

/** A server that counts the HTTP requests it gets and answers none as wavault would. */
async function listen(server: http.Server | https.Server): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
    requests += 1;
    response.end("not wavault");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = server instanceof https.Server ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Whether a forward that got no answer may have reached the other instance decides what
 * the caller hears: "refused" (nothing happened there) or 504 "may have been carried out".
 */
describe("forwardToOwner, when no answer comes back", () => {
  let dir: string;
  let plain: Awaited<ReturnType<typeof listen>>;
  let selfSigned: Awaited<ReturnType<typeof listen>>;
  const send = (ownerUrl: string, token = "header.payload.signature") =>
    forwardToOwner(new Request("http://127.0.0.1:3000/api/whatsapp/messages", { method: "POST", headers: { cookie: `wavault_token=${token}` } }), ownerUrl, { to: "49151@c.us", text: "hi" }, { timeoutMs: 5_000 });

  beforeAll(async () => {
    vi.stubEnv("POCKETBASE_ADMIN_EMAIL", "ops@wavault.test");
    vi.stubEnv("POCKETBASE_ADMIN_PASSWORD", "a-password-1234");
    vi.stubEnv("SESSION_ENCRYPTION_KEY", randomBytes(32).toString("base64"));
    vi.stubEnv("INSTANCE_ID", "forward-test");
    dir = await mkdtemp(path.join(os.tmpdir(), "wavault-forward-"));
    const [key, cert] = [path.join(dir, "key.pem"), path.join(dir, "cert.pem")];
    await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"]);
    plain = await listen(http.createServer());
    selfSigned = await listen(https.createServer({ key: await readFile(key), cert: await readFile(cert) }));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await plain?.close();
    await selfSigned?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("says the request may have got there when it did (an answer that is not wavault's)", async () => {
    expect(await send(plain.url)).toEqual({ answer: null, reached: true });
    expect(plain.requests()).toBe(1);
  });

  it("says it did not when TLS refused the instance's certificate, or https met a plain port", async () => {
    const before = [plain.requests(), selfSigned.requests()];
    expect(await send(selfSigned.url)).toEqual({ answer: null, reached: false });
    expect(await send(plain.url.replace("http:", "https:"))).toEqual({ answer: null, reached: false });
    expect([plain.requests(), selfSigned.requests()]).toEqual(before);
  });

  it("says it did not when fetch refused to send the request at all", async () => {
    const before = plain.requests();
    // A cookie that decodes to a line break: no header may carry it.
    expect(await send(plain.url, "a%0Ab")).toEqual({ answer: null, reached: false });
    expect(plain.requests()).toBe(before);
  });
});
