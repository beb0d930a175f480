import { describe, expect, it } from "vitest";

import { verifyCronRequestOrThrow } from "../../../src/lib/http/cron-auth";
import { credentialsFromRequest, isSameOrigin } from "../../../src/lib/http/request-auth";

const AUTH_COOKIE = "wavault_token";
const tokenFromRequest = (request: Request, production = false, publicUrl?: string) =>
  credentialsFromRequest(request, { production, publicUrl })?.token ?? null;

const request = (headers: Record<string, string>) => new Request("http://localhost/api/whatsapp/status", { headers });

describe("credentialsFromRequest", () => {
  it("reads a bearer token, else the dashboard's cookie", () => {
    expect(tokenFromRequest(request({ authorization: "Bearer abc.def.ghi" }))).toBe("abc.def.ghi");
    expect(tokenFromRequest(request({ authorization: "bearer   abc" }))).toBe("abc");
    expect(tokenFromRequest(request({ cookie: `theme=dark; ${AUTH_COOKIE}=tok%2Ben; other=1` }))).toBe("tok+en");
    expect(tokenFromRequest(request({}))).toBeNull();
  });

  it("in production reads the cookie only under its __Host- name, except on a loopback host", () => {
    const on = (host: string, cookie: string) => tokenFromRequest(request({ host, cookie }), true);
    // A bare-named cookie could have been planted through a parent domain: ignored.
    expect(on("app.example.com", "wavault_token=planted")).toBeNull();
    expect(on("app.example.com", "wavault_token=planted; __Host-wavault_token=mine")).toBe("mine");
    expect(on("127.0.0.1:3000", "wavault_token=local")).toBe("local");
    expect(on("localhost:3000", "__Host-wavault_token=x")).toBeNull();
    // With PUBLIC_URL https, a loopback Host (a proxy's upstream) reads only the __Host- name too.
    const behindProxy = (cookie: string) => tokenFromRequest(request({ host: "127.0.0.1:3000", cookie }), true, "https://wavault.example.com");
    expect(behindProxy("wavault_token=planted")).toBeNull();
    expect(behindProxy("__Host-wavault_token=mine")).toBe("mine");
  });

  it("never falls back to the cookie when an Authorization header is there but malformed", () => {
    expect(tokenFromRequest(request({ authorization: "Basic dXNlcjpwYXNz", cookie: `${AUTH_COOKIE}=tok` }))).toBeNull();
    expect(tokenFromRequest(request({ authorization: "Bearer two words" }))).toBeNull();
  });
});

describe("isSameOrigin", () => {
  it("trusts Sec-Fetch-Site, else compares Origin with PUBLIC_URL when set, else with the Host", () => {
    expect(isSameOrigin(request({ "sec-fetch-site": "same-origin", origin: "https://evil.example" }))).toBe(true);
    expect(isSameOrigin(request({ "sec-fetch-site": "cross-site" }))).toBe(false);
    expect(isSameOrigin(request({ origin: "https://app.example.com", host: "app.example.com" }))).toBe(true);
    expect(isSameOrigin(request({ origin: "https://evil.example", host: "app.example.com" }))).toBe(false);
    // Behind a proxy that sends its upstream's Host, PUBLIC_URL is what the page's origin is.
    const publicUrl = "https://app.example.com";
    expect(isSameOrigin(request({ origin: "https://app.example.com", host: "127.0.0.1:3000" }), publicUrl)).toBe(true);
    expect(isSameOrigin(request({ origin: "http://app.example.com", host: "127.0.0.1:3000" }), publicUrl)).toBe(false);
    expect(isSameOrigin(request({ origin: "https://evil.example", host: "evil.example" }), publicUrl)).toBe(false);
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
