// Package deliver sends queued deliveries to their destinations.
//
// It owns the delivery side of Relay: one dispatcher goroutine per
// destination that leases due deliveries from the store (no more than the
// destination has free workers), a bounded pool of workers per destination
// that each make one HTTP attempt, the retry policy (CheckRetry, Backoff) and
// Standard Webhooks signing (Signer). Destinations served by an agent are not
// dispatched here.
//
// Retries are never kept in memory: a failed attempt is recorded with
// Queue.Retry and a due time, and the delivery comes back through Lease when
// it is due, so retries survive a restart. A worker holds a lease (the
// destination's timeout plus a margin, extended every third of it while the
// attempt runs); if the process dies, the lease expires and another worker
// takes the delivery over, so delivery is at-least-once. Receivers
// deduplicate on the Idempotency-Key or webhook-id header.
//
// HTTP goes through github.com/hashicorp/go-retryablehttp with its retry loop
// turned off (RetryMax 0, a CheckRetry that never retries,
// PassthroughErrorHandler). What it adds here is the rewindable request body:
// it sets GetBody, which lets net/http replay the POST on a pooled connection
// that the server had closed (net/http does this for requests carrying an
// Idempotency-Key), and its request and response hooks are there for later
// use. Its logger is off because it would print the URL's query string.
//
// Each destination has its own http.Client and connection pool: a
// destination that hangs exhausts only its own. Redirects are not followed
// (a 3xx is a retryable failure naming the Location), so a receiver can never
// point a signed body somewhere else. URLs are logged and recorded without
// userinfo or query, and header values and secrets are never logged.
package deliver
