// Package admin owns the operator-facing listener (admin.listen): the
// /healthz and /readyz probes, Prometheus metrics on /metrics, and the /api
// routes of SPEC section 6 — event lookup and search, the dead-letter queue
// (list, replay, delete), parked events (list, replay under the running
// routes), destination states and config reload. An event's page shows,
// beside the original body, what each destination with a transform is
// sent (computed on read through the Options.Sent hook).
//
// Every /api route requires Authorization: Bearer <admin.token> when a token
// is configured. Lists answer a JSON array; the next page's cursor comes in
// the X-Next-Cursor header (and a Link rel="next" header). Errors answer
// {"error": "..."}.
//
// The package reads and changes the store through the small Store interface
// and reaches the running relay (routing, wake-ups, destination states,
// reload) through function hooks in Options, so it holds no relay state of
// its own.
package admin
