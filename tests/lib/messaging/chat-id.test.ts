import { describe, expect, it } from "vitest";

import { toChatId } from "../../../src/lib/messaging/chat-id";

describe("toChatId", () => {
  it("turns a phone number in international format into a user chat id", () => {
    expect(toChatId("+49 151 2345-6789")).toBe("4915123456789@c.us");
    expect(toChatId("+1 (415) 555.0100")).toBe("14155550100@c.us");
    expect(toChatId("4915123456789")).toBe("4915123456789@c.us");
  });

  it("keeps chat ids as they are", () => {
    expect(toChatId("4915123456789@c.us")).toBe("4915123456789@c.us");
    expect(toChatId("120363025246125486@g.us")).toBe("120363025246125486@g.us");
    expect(toChatId("4915123456789-1600000000@g.us")).toBe("4915123456789-1600000000@g.us");
  });

  it("refuses what is neither", () => {
    for (const bad of ["", "call me", "0151 2345678", "+12", "+1234567890123456", "49151@s.whatsapp.net", "4915123456789@c.us.evil.com"]) {
      expect(toChatId(bad), bad).toBeNull();
    }
  });
});
