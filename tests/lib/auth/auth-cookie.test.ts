import { describe, expect, it } from "vitest";

import { authCookieName, authCookieOptions } from "../../../src/lib/auth/auth-cookie";

describe("the dashboard's token cookie", () => {
  it("is __Host-wavault_token, Secure, Path=/ and no Domain on a production host", () => {
    expect(authCookieName("app.example.com", true)).toBe("__Host-wavault_token");
    const options = authCookieOptions("app.example.com", true);
    expect(options).toMatchObject({ secure: true, path: "/", httpOnly: true, sameSite: "lax" });
    expect(options).not.toHaveProperty("domain");
  });

  it("is the bare, non-Secure wavault_token in development and on a loopback host", () => {
    for (const [host, production] of [
      ["app.example.com", false],
      ["localhost:3000", true],
      ["127.0.0.1:3000", true],
      ["[::1]:3000", true],
    ] as const) {
      expect(authCookieName(host, production)).toBe("wavault_token");
      expect(authCookieOptions(host, production).secure).toBe(false);
    }
  });
});
