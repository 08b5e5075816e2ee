// Package admin owns the operator-facing listener (admin.listen): the
// /healthz and /readyz probes, Prometheus metrics on /metrics, the /api
// routes of SPEC section 6 — event lookup and search, the dead-letter queue
// (list, replay, delete), parked events (list, replay under the running
// routes), destination states and config reload — and what the web console
// adds: stats, the live tail (server-sent events from Tail), the masked
// running config and whoami. The console's files (package ui) are served
// under /ui/ when Options.Console is set. An event's page shows, beside the
// original body, what each destination with a transform is sent (computed
// on read through the Options.Sent hook).
//
// Every /api route requires Authorization: Bearer <admin.token> when a token
// is configured. A client portal's token (Options.Portals) is accepted too,
// scoped to the portal's destinations: auth puts the caller's Scope in the
// request context, the routes a portal may call filter by it, and every
// other route answers it 403. Lists answer a JSON array; the next page's
// cursor comes in the X-Next-Cursor header (and a Link rel="next" header).
// Errors answer {"error": "..."}.
//
// The package reads and changes the store through the small Store interface
// and reaches the running relay (routing, wake-ups, destination states,
// reload, the running config) through function hooks in Options, so it
// holds no relay state of its own beyond the tokens and the tail's
// subscribers.
//
// It must not import the relay package, ingest or delivery; what it needs of
// them comes through Options.
package admin
