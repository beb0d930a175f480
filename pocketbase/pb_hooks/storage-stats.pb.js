// The stored sessions' totals (the health route and /status), superusers only: one SQL
// aggregate over the records that hold an archive, however many there are (listing every
// record through the API took one request per 1,000 sessions, each moving every row).

routerAdd(
  "GET",
  "/api/wavault/sessions/stats",
  (e) => {
    const row = new DynamicModel({ sessions: 0, total_bytes: 0, largest_bytes: 0, oldest_last_active: "" });
    $app
      .db()
      .newQuery(
        "SELECT COUNT(*) AS sessions," +
          " CAST(COALESCE(SUM(size_bytes), 0) AS INTEGER) AS total_bytes," +
          " CAST(COALESCE(MAX(size_bytes), 0) AS INTEGER) AS largest_bytes," +
          " COALESCE(MIN(NULLIF(last_active, '')), '') AS oldest_last_active" +
          " FROM whatsapp_sessions WHERE COALESCE(archive, '') != ''",
      )
      .one(row);
    return e.json(200, {
      totalSessions: row.sessions,
      totalSizeBytes: row.total_bytes,
      largestSizeBytes: row.largest_bytes,
      // As PocketBase stores and shows dates: "YYYY-MM-DD HH:MM:SS.sssZ".
      oldestLastActive: row.oldest_last_active || null,
    });
  },
  $apis.requireSuperuserAuth(),
);
