import PocketBase from "pocketbase";
import { describe, expect, it } from "vitest";

import { testPocketBase } from "../helpers/pocketbase";

describe("sign-up through PocketBase's users collection", () => {
  const anonymous = () => new PocketBase(testPocketBase().url).collection("users");
  const account = () => {
    const password = `pw-${crypto.randomUUID()}`;
    return { email: `signup-${crypto.randomUUID()}@wavault.test`, password, passwordConfirm: password };
  };

  it("refuses a sign-up that chooses its own id (a deleted or not yet imported user's), and gives one otherwise", async () => {
    const chosen = `chosen${Date.now().toString().slice(-9)}`; // 15 characters, like PocketBase's own ids
    await expect(anonymous().create({ ...account(), id: chosen })).rejects.toMatchObject({ status: 400 });
    const form = new FormData();
    for (const [name, value] of Object.entries({ ...account(), id: chosen })) form.set(name, value);
    await expect(anonymous().create(form)).rejects.toMatchObject({ status: 400 });

    const created = await anonymous().create(account());
    expect(created.id).toMatch(/^[a-z0-9]{15}$/);
    expect(created.id).not.toBe(chosen);
  });
});
