// Package ingest owns the provider-facing HTTP handler and its routes,
// POST /hooks/{webhook_id} and POST /hooks with JSON 404 and 405 answers,
// which Mount puts on the ingest listener's one gorilla/mux router (the
// agent protocol mounts its own beside them; ingest does not know it). It
// reads a callback within the body limit, extracts webhook_id, matcher and
// dedupe fields from the body without re-encoding it, routes it, and
// answers only after the store has durably accepted the event (or refused
// it as a duplicate).
//
// The same tolerant reader gives a body as jq values (DecodeJSON, Value)
// for routes' filters and destinations' transforms; it is run only when a
// filter needs it, so routing without filters costs what it did.
//
// Before anything is routed, claimed or stored it verifies the callback
// (auth.go: token, HMAC, Standard Webhooks, allow_ips with the client IP
// taken through trusted proxies) and bounds what callbacks can hold
// (limits.go: concurrent requests, body bytes reserved before they are
// read, a per-client-IP rate limit). It forms the dedupe claim key, hashing
// long ones, but does not know how a store keeps it.
//
// Ingest never talks to delivery: it hands accepted events to the store, and
// an optional OnAccepted hook lets the caller wake the destinations' workers.
package ingest
