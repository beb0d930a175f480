import { describe, expect, it } from "vitest";

import { verifyCronRequestOrThrow } from "../../../src/lib/http/cron-auth";
import { AUTH_COOKIE } from "../../../src/lib/auth/auth-cookie";
import { credentialsFromRequest } from "../../../src/lib/http/request-auth";

const tokenFromRequest = (request: Request) => credentialsFromRequest(request)?.token ?? null;

const request = (headers: Record<string, string>) => new Request("http://localhost/api/whatsapp/status", { headers });

describe("credentialsFromRequest", () => {
  it("reads a bearer token, else the dashboard's cookie", () => {
    expect(tokenFromRequest(request({ authorization: "Bearer abc.def.ghi" }))).toBe("abc.def.ghi");
    expect(tokenFromRequest(request({ authorization: "bearer   abc" }))).toBe("abc");
    expect(tokenFromRequest(request({ cookie: `theme=dark; ${AUTH_COOKIE}=tok%2Ben; other=1` }))).toBe("tok+en");
    expect(tokenFromRequest(request({}))).toBeNull();
  });

  it("never falls back to the cookie when an Authorization header is there but malformed", () => {
    expect(tokenFromRequest(request({ authorization: "Basic dXNlcjpwYXNz", cookie: `${AUTH_COOKIE}=tok` }))).toBeNull();
    expect(tokenFromRequest(request({ authorization: "Bearer two words" }))).toBeNull();
  });
});

describe("verifyCronRequestOrThrow", () => {
  const secret = "a-cron-secret-of-some-length";

  it("accepts exactly `Bearer <CRON_SECRET>`", () => {
    expect(() => verifyCronRequestOrThrow(request({ authorization: `Bearer ${secret}` }), secret)).not.toThrow();
    for (const authorization of [undefined, secret, `Bearer ${secret}x`, `Bearer ${secret.slice(0, -1)}`, `bearer ${secret}`]) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      expect(() => verifyCronRequestOrThrow(request(headers), secret)).toThrow(expect.objectContaining({ code: "unauthorized" }));
    }
  });

  it("refuses every call when no secret is configured", () => {
    expect(() => verifyCronRequestOrThrow(request({ authorization: "Bearer " }), undefined)).toThrow(
      expect.objectContaining({ code: "cron_disabled" }),
    );
  });
});
