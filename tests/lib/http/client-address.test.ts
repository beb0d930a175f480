import { describe, expect, it } from "vitest";

import { addressKey, clientAddressOf } from "../../../src/lib/http/client-address";

describe("clientAddressOf", () => {
  const headers = (values: Record<string, string>) => new Headers(values);

  it("reads nothing unless a header is configured: a client can send any header", () => {
    expect(clientAddressOf(headers({ "x-real-ip": "203.0.113.7", "x-forwarded-for": "203.0.113.7" }), undefined)).toBeNull();
  });

  it("reads the configured header, and of x-forwarded-for the last entry (the one the proxy appended)", () => {
    expect(clientAddressOf(headers({ "x-real-ip": " 203.0.113.7 " }), "x-real-ip")).toBe("203.0.113.7");
    expect(clientAddressOf(headers({ "x-forwarded-for": "198.51.100.1, 10.0.0.2,203.0.113.7" }), "x-forwarded-for")).toBe("203.0.113.7");
  });

  it("gives null for a missing header or one that holds no address", () => {
    expect(clientAddressOf(headers({}), "x-real-ip")).toBeNull();
    for (const value of ["not an address", "unknown", "203.0.113.7, ", "999.1.1.1", "1".repeat(65)]) {
      expect(clientAddressOf(headers({ "x-forwarded-for": value }), "x-forwarded-for")).toBeNull();
    }
  });
});

describe("addressKey", () => {
  it("keys a client the same whichever way its address is written", () => {
    for (const form of ["203.0.113.7", "203.0.113.7:5678", "::ffff:203.0.113.7", "[::ffff:203.0.113.7]:443", "::ffff:cb00:7107"]) {
      expect(addressKey(form)).toBe("203.0.113.7");
    }
  });

  it("keys an IPv6 address by its /64: one host may hold all of it", () => {
    const key = "2001:db8:0:1::/64";
    for (const form of ["2001:db8:0:1::1", "2001:0DB8:0000:0001:ffff:ffff:ffff:ffff", "[2001:db8:0:1::2]:8080", "2001:db8:0:1::3%eth0"]) {
      expect(addressKey(form)).toBe(key);
    }
    expect(addressKey("2001:db8:0:2::1")).not.toBe(key);
  });
});
