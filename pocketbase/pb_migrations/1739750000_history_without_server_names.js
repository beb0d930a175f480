// lease_taken_over events named the server whose lease lapsed (data.from: its lease
// owner, "<prefix>/<INSTANCE_ID>/<hex>"), and users read their own history. New ones
// hold only the generation (the log names the server); this removes the name from those
// recorded before. Down has nothing to put back.

migrate(
  (app) => {
    app
      .db()
      .newQuery("UPDATE whatsapp_session_events SET data = json_remove(data, '$.from') WHERE event = 'lease_taken_over' AND json_valid(data) AND json_type(data, '$.from') IS NOT NULL")
      .execute();
  },
  () => {},
);
