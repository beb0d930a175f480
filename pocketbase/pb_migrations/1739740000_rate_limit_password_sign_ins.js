// PocketBase's own rate limiter, off in a new PocketBase, is turned on for password
// sign-ins: PocketBase must be reachable by API users (they get their tokens from it),
// and without a limit anyone could guess passwords there as fast as bcrypt answers,
// past the app's own sign-in throttle, and spend the shared database's CPU doing it.
// Per client address, as PocketBase counts (behind a proxy, set its trusted proxy
// headers in the dashboard, or every client is the proxy). For every audience: a guesser
// who signed up may send their own token along. The app's own sign-ins (the dashboard's,
// /status's) carry its superuser token, which PocketBase never limits: they are
// throttled by the app. Only the sign-in rules are set: PocketBase's default rules
// (*:auth, /api/, ...) would count every user's requests through the app as one client's.
// A PocketBase whose rate limiter an operator already turned on is left as it is.

const RULES = [
  { label: "users:authWithPassword", audience: "", duration: 60, maxRequests: 30 },
  { label: "_superusers:authWithPassword", audience: "", duration: 60, maxRequests: 30 },
];
/** What a new PocketBase (0.39) holds, off: down puts it back. */
const POCKETBASE_DEFAULT_RULES = [
  { label: "*:auth", audience: "", duration: 3, maxRequests: 2 },
  { label: "*:create", audience: "", duration: 5, maxRequests: 20 },
  { label: "/api/batch", audience: "", duration: 1, maxRequests: 3 },
  { label: "/api/", audience: "", duration: 10, maxRequests: 300 },
];

migrate(
  (app) => {
    const settings = app.settings();
    if (settings.rateLimits.enabled) return;
    settings.rateLimits.enabled = true;
    settings.rateLimits.rules = RULES;
    app.save(settings);
  },
  (app) => {
    const settings = app.settings();
    const ours = (rule) => RULES.some((mine) => mine.label === rule.label && mine.maxRequests === rule.maxRequests && mine.duration === rule.duration);
    // Changed since (by an operator): theirs now.
    if (!settings.rateLimits.enabled || settings.rateLimits.rules.length !== RULES.length || !settings.rateLimits.rules.every(ours)) return;
    settings.rateLimits.enabled = false;
    settings.rateLimits.rules = POCKETBASE_DEFAULT_RULES;
    app.save(settings);
  },
);
