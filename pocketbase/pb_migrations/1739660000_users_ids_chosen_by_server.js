// users: a sign-up may not choose its own record id. The backend and the migration
// script (scripts/migrate-whatsapp-sessions.ts) find a user's session by that id, so a
// stranger who could register the id of a deleted account, or of an account not yet
// imported, would be handed that person's WhatsApp session. PocketBase generates the
// id when none is sent. An operator's own create rule is kept and narrowed; a closed
// sign-up (null) stays closed.

const NO_CHOSEN_ID = "@request.body.id:isset = false";

// The rule as a string, or null when only superusers may create (read through JSON:
// the Go field is a *string).
const createRuleOf = (users) => JSON.parse(JSON.stringify(users)).createRule;

migrate(
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    const rule = createRuleOf(users);
    if (rule === null || rule === undefined) return;
    unmarshal({ createRule: rule === "" ? NO_CHOSEN_ID : `(${rule}) && ${NO_CHOSEN_ID}` }, users);
    app.save(users);
  },
  (app) => {
    const users = app.findCollectionByNameOrId("users");
    const rule = createRuleOf(users);
    const suffix = ` && ${NO_CHOSEN_ID}`;
    if (rule === NO_CHOSEN_ID) unmarshal({ createRule: "" }, users);
    else if (typeof rule === "string" && rule.endsWith(suffix)) unmarshal({ createRule: rule.slice(1, -suffix.length - 1) }, users);
    app.save(users);
  },
);
