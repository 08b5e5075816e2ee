// Package deliver sends queued deliveries to their destinations.
//
// It owns the delivery side of Relay: one Pipeline per destination (its
// retry policy: go-retryablehttp's CheckRetry and Backoff types, or an
// explicit retry.schedule; its circuit breaker; the request of each
// attempt, with Standard Webhooks signing; and settling an attempt), one
// dispatcher goroutine per direct destination that leases due deliveries
// from the store, and a bounded pool of workers per destination that each
// make one HTTP attempt.
//
// A Pipeline settles an attempt the same way whoever made it (pipeline.go):
// the policy decides, a result the receiver gave feeds the breaker, the
// hooks (OnAttempt, OnResult) see it, it is logged, and the outcome is
// written, with a lost lease or a failed write handled by the caller. A
// worker frees its slot between the logging and the write. Destinations
// served by an agent are not dispatched here: the agent server
// (relay/agent) takes their Pipeline from Manager.Pipeline for admission,
// the request (Assign) and settling (Settle), and the agent attempts with a
// Sender, the workers' own HTTP code.
//
// Retries are never kept in memory: a failed attempt is settled as pending
// with a due time, and the delivery comes back through Lease when it is
// due, so retries survive a restart. A worker holds a lease (the
// destination's timeout plus a margin, extended every third of it while the
// attempt runs); if the process dies, the lease expires and another worker
// takes the delivery over, so delivery is at-least-once. Receivers
// deduplicate on the Idempotency-Key or webhook-id header. One timer per
// destination (keeper.go) drives both the extensions and the attempts'
// timeouts. The keeper, the circuit's cooldowns, due times and signatures
// read one clock, Options.Clock (internal/clock), which tests move by hand.
//
// A dispatcher leases ahead: up to twice the destination's concurrency. A
// gate (gate.go) lets at most concurrency of them attempt; the others wait
// in its queue with their leases extended, and a worker whose attempt ends
// takes the oldest of them itself, keeping its slot, so no goroutine is
// woken to start it. A worker that finishes an attempt so finds the next
// delivery leased, and while every slot is taken the dispatcher leases in
// batches of at least half a pool rather than one delivery per freed slot.
//
// A worker frees its slot as soon as the attempt is classified and writes
// the outcome afterwards, so the next attempt runs while the store commits
// the last one, and outcomes of many workers share one commit. The number of
// deliveries a destination holds (attempting or being recorded) is bounded,
// so a slow store cannot pile up leases. The store takes the outcome
// without the worker waiting (store.Settle, answered through a callback):
// the worker is free at once, nobody is woken when the write is done, and
// Run still returns only once every outcome is written. Only a failed
// write is retried by a goroutine that waits (store.SettleWait).
//
// The circuit breaker counts consecutive failed attempts of any kind. At
// circuit.failures it opens: the dispatcher stops leasing, so deliveries
// wait in the queue without spending attempts, and deliveries already leased
// but not yet attempted are released. After circuit.cooldown one probe
// delivery is leased; its success closes the circuit, its failure opens it
// for another cooldown. Workers record each result before freeing their
// slot, so with concurrency 1 no attempt follows the one that opened it.
// The breaker is per process: with the Redis store each relay keeps its own.
// An agent destination's is its Pipeline's, fed by the agents' reports.
//
// HTTP goes through github.com/hashicorp/go-retryablehttp, with its retry
// loop turned off (RetryMax 0, a CheckRetry that never retries,
// PassthroughErrorHandler): the store schedules retries, so they survive a
// restart. The retry policy is of the library's function types all the
// same (policy.go): a retryablehttp.CheckRetry classifies each failed
// attempt and a retryablehttp.Backoff picks the wait, and Options accept
// the library's own. The defaults wrap the library's (its transport-error
// checks, its exponential backoff) and keep what Relay did before where
// they differ: more statuses retried, full jitter, Retry-After honoured on
// any status and in every date form. An agent's result, which crosses a
// wire, goes through the same functions with its response rebuilt. The
// request is built by hand (newRequest) rather than with
// retryablehttp.NewRequestWithContext, which would parse the URL again at
// every attempt; it sets GetBody, which lets net/http replay the POST on a
// pooled connection that the server had closed (net/http does this for
// requests carrying an Idempotency-Key). The client's logger is off
// because it would print the URL's query string.
//
// Each destination has its own http.Client and connection pool: a
// destination that hangs exhausts only its own. Its timeout bounds the whole
// attempt, redirects and reading the response included; the response body is
// read to 64 KiB at most and 1 KiB of it is kept. Redirects are not followed
// by default (a 3xx is a retryable failure naming the Location), so a
// receiver cannot point a signed body somewhere else; with follow_redirects,
// 301, 302, 307 and 308 are followed up to 5 times, to the same scheme only,
// re-sending the POST, with only the headers Relay builds once the host
// changes, and never to the relay's own listeners or (from a destination on
// a public address) to a non-public one (guard.go): those hops have their
// own client whose dialer checks the address it connects to. URLs are
// logged and recorded with their password and query values masked
// (internal/redact), and header values and secrets are never logged.
//
// A destination's transform (relay/transform) runs at each attempt, just
// before the request is built, on the stored original body; the signature
// covers its result. It fails the same way on every attempt, so a failure
// dead-letters the delivery at once, and it is not the receiver's fault, so
// it does not feed the circuit breaker. Without a transform the request is
// built exactly as before.
//
// Manager.Update applies a new destination list (a config reload) without
// stopping anything, and Manager.States reports each destination's circuit,
// attempts in flight and last results (relay/state) for the admin API and
// metrics.
//
// It must not know how ingest takes a callback or how a backend keeps a
// delivery: it works through the store contract and the destinations' config.
package deliver
