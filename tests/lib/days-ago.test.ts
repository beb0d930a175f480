import { describe, expect, it } from "vitest";

import { daysAgo } from "../../src/lib/days-ago";

describe("daysAgo", () => {
  it("goes back whole and fractional days from the given moment", () => {
    const now = new Date("2026-03-10T12:00:00.000Z");
    expect(daysAgo(1, now).toISOString()).toBe("2026-03-09T12:00:00.000Z");
    expect(daysAgo(30, now).toISOString()).toBe("2026-02-08T12:00:00.000Z");
    expect(daysAgo(0.5, now).toISOString()).toBe("2026-03-10T00:00:00.000Z");
  });
});
