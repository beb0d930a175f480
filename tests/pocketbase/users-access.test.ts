import PocketBase from "pocketbase";
import { describe, expect, it } from "vitest";

import { adminClient, createTestUser, testPocketBase } from "../helpers/pocketbase";

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

  it("stores no file a sign-up sends: users have no avatar field to fill the archives' storage", async () => {
    const form = new FormData();
    for (const [name, value] of Object.entries(account())) form.set(name, value);
    form.set("avatar", new File([Buffer.alloc(1024, 1)], "avatar.png", { type: "image/png" }));
    const created = await anonymous().create(form);
    expect(created).not.toHaveProperty("avatar");

    const users = await (await adminClient()).collections.getOne("users");
    expect(users.fields.filter((field) => field.type === "file")).toEqual([]);
  });
});

describe("a user's own record", () => {
  it("cannot be marked verified, nor given another email or id, by the user", async () => {
    const admin = await adminClient();
    const user = await createTestUser(admin);
    await admin.collection("users").update(user.record.id, { verified: false });
    const own = user.pb.collection("users");
    await expect(own.update(user.record.id, { verified: true })).rejects.toMatchObject({ status: 400 });
    await expect(own.update(user.record.id, { email: `taken-${user.email}` })).rejects.toMatchObject({ status: 400 });
    await expect(own.update(user.record.id, { id: "chosen000000000" })).rejects.toMatchObject({ status: 400 });
    const after = await admin.collection("users").getOne(user.record.id);
    expect({ verified: after.verified, email: after.email }).toEqual({ verified: false, email: user.email });
  });
});

describe("deleting an account", () => {
  it("is refused to the user themselves (a delete would cascade to a session an instance may be running)", async () => {
    const admin = await adminClient();
    const user = await createTestUser(admin);
    await expect(user.pb.collection("users").delete(user.record.id)).rejects.toMatchObject({ status: 403 });
    await expect(admin.collection("users").getOne(user.record.id)).resolves.toMatchObject({ id: user.record.id });
  });
});
