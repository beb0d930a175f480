// users: two of PocketBase's defaults that wavault never uses and that cost it.
// - The `avatar` file field: anyone who could sign up could store a 5 MiB image in the
//   file storage the session archives need, once per sign-up. wavault shows no avatar.
// - The self-delete rule (`id = @request.auth.id`): a user deleting their own account
//   through PocketBase's API cascades to their whatsapp_sessions record while an
//   instance may be running that session under its lease, and skips the WhatsApp
//   logout, so the device stays linked on the phone. wavault offers no account
//   deletion; an operator deletes users as a superuser.

const DEFAULT_DELETE_RULE = "id = @request.auth.id";

migrate(
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    if (users.fields.getByName("avatar")) users.fields.removeByName("avatar");
    users.deleteRule = null;
    app.save(users);
  },
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    if (!users.fields.getByName("avatar")) {
      users.fields.add(
        new FileField({
          name: "avatar",
          maxSelect: 1,
          maxSize: 0,
          mimeTypes: ["image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"],
        }),
      );
    }
    users.deleteRule = DEFAULT_DELETE_RULE;
    app.save(users);
  },
);
