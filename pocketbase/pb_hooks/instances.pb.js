// The records of the app instances that resume sessions, for superusers only: renew one
// (beat), remove one (leave), and list the live ones with their loads. The logic is in
// wavault-instances.js.

routerAdd(
  "POST",
  "/api/wavault/instances/beat",
  (e) => {
    const lib = require(`${__hooks}/wavault-instances.js`);
    const leases = require(`${__hooks}/wavault-leases.js`);
    const body = e.requestInfo().body;
    leases.requireFields(body, ["owner", "instanceId", "maxConnections", "ttlMs"]);
    const owner = leases.text(body, "owner");
    const fields = {
      instanceId: leases.text(body, "instanceId"),
      url: typeof body.url === "string" ? body.url.slice(0, 2048) : "",
      accepting: body.accepting === true,
      // An app instance of an earlier version does not say: it takes new links when it takes sessions.
      acceptingNewLinks: typeof body.acceptingNewLinks === "boolean" ? body.acceptingNewLinks : body.accepting === true,
      maxConnections: leases.positiveInt(body, "maxConnections"),
    };
    const ttlMs = leases.positiveInt(body, "ttlMs", leases.MAX_TTL_MS);
    let result;
    $app.runInTransaction((txApp) => {
      result = lib.beat(txApp, owner, fields, ttlMs);
    });
    return e.json(200, result);
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "POST",
  "/api/wavault/instances/leave",
  (e) => {
    const lib = require(`${__hooks}/wavault-instances.js`);
    const leases = require(`${__hooks}/wavault-leases.js`);
    const owner = leases.text(e.requestInfo().body, "owner");
    let result;
    $app.runInTransaction((txApp) => {
      result = lib.leave(txApp, owner);
    });
    return e.json(200, result);
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "GET",
  "/api/wavault/instances",
  (e) => {
    const lib = require(`${__hooks}/wavault-instances.js`);
    return e.json(200, { instances: lib.live($app) });
  },
  $apis.requireSuperuserAuth(),
);
