import { describe, expect, it } from "vitest";

import { authCookieName, authCookieOptions, tokenLifetimeSeconds, type CookieSite } from "../../../src/lib/auth/auth-cookie";
import { adminClient, createTestUser } from "../../helpers/pocketbase";

const production: CookieSite = { production: true };
const development: CookieSite = { production: false };

describe("the dashboard's token cookie", () => {
  it("is __Host-wavault_token, Secure, Path=/ and no Domain on a production host", () => {
    expect(authCookieName("app.example.com", production)).toBe("__Host-wavault_token");
    const options = authCookieOptions("app.example.com", production);
    expect(options).toMatchObject({ secure: true, path: "/", httpOnly: true, sameSite: "lax" });
    expect(options).not.toHaveProperty("domain");
  });

  it("is the bare, non-Secure wavault_token in development and on a loopback host", () => {
    for (const [host, site] of [
      ["app.example.com", development],
      ["localhost:3000", production],
      ["127.0.0.1:3000", production],
      ["[::1]:3000", production],
    ] as const) {
      expect(authCookieName(host, site)).toBe("wavault_token");
      expect(authCookieOptions(host, site).secure).toBe(false);
    }
  });

  it("follows PUBLIC_URL, not the Host header, when it is set (a proxy that sends its upstream's loopback Host)", () => {
    const https: CookieSite = { production: true, publicUrl: "https://wavault.example.com" };
    expect(authCookieName("127.0.0.1:3000", https)).toBe("__Host-wavault_token");
    expect(authCookieOptions("127.0.0.1:3000", https).secure).toBe(true);
    expect(authCookieName("127.0.0.1:3000", { production: true, publicUrl: "HTTPS://wavault.example.com" })).toBe("__Host-wavault_token");
    const http: CookieSite = { production: true, publicUrl: "http://localhost:3000" };
    expect(authCookieName("app.example.com", http)).toBe("wavault_token");
    expect(authCookieName("127.0.0.1:3000", { ...https, production: false })).toBe("wavault_token");
  });

  it("lives as long as the user's PocketBase token, not longer", async () => {
    const { token } = await createTestUser(await adminClient());
    const { exp } = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number };
    const now = Date.now();
    expect(tokenLifetimeSeconds(token, now)).toBe(Math.floor(exp - now / 1000));
    expect(tokenLifetimeSeconds(token, now)).toBeLessThan(7 * 24 * 60 * 60); // PocketBase's users tokens: 5 days here
    expect(tokenLifetimeSeconds("not-a-jwt")).toBe(7 * 24 * 60 * 60);
  });
});
