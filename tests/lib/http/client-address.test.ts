import { describe, expect, it } from "vitest";

import { clientAddressOf } from "../../../src/lib/http/client-address";

describe("clientAddressOf", () => {
  const headers = (values: Record<string, string>) => new Headers(values);

  it("reads nothing unless a header is configured: a client can send any header", () => {
    expect(clientAddressOf(headers({ "x-real-ip": "203.0.113.7", "x-forwarded-for": "203.0.113.7" }), undefined)).toBeNull();
  });

  it("reads the configured header, and of x-forwarded-for the last entry (the one the proxy appended)", () => {
    expect(clientAddressOf(headers({ "x-real-ip": " 203.0.113.7 " }), "x-real-ip")).toBe("203.0.113.7");
    expect(clientAddressOf(headers({ "x-forwarded-for": "198.51.100.1, 10.0.0.2,203.0.113.7" }), "x-forwarded-for")).toBe("203.0.113.7");
    expect(clientAddressOf(headers({ "cf-connecting-ip": "2001:DB8::1" }), "cf-connecting-ip")).toBe("2001:db8::1");
  });

  it("gives null for a missing header or one that holds no address", () => {
    expect(clientAddressOf(headers({}), "x-real-ip")).toBeNull();
    expect(clientAddressOf(headers({ "x-real-ip": "not an address" }), "x-real-ip")).toBeNull();
    expect(clientAddressOf(headers({ "x-forwarded-for": "203.0.113.7, " }), "x-forwarded-for")).toBeNull();
    expect(clientAddressOf(headers({ "x-real-ip": "1".repeat(65) }), "x-real-ip")).toBeNull();
  });
});
