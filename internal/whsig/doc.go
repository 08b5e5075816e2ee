// Package whsig holds the Standard Webhooks (https://www.standardwebhooks.com)
// primitives that both sides of the relay use: parsing "whsec_" secrets,
// the signed content (id "." timestamp "." body) and verifying a
// webhook-signature header. Delivery signs with it; ingest verifies with it.
//
// It knows nothing of HTTP handlers, config or the relay's packages; errors
// never contain a secret.
package whsig
