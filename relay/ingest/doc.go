// Package ingest owns the provider-facing HTTP handler: it reads a callback
// within the body limit, extracts webhook_id, matcher and dedupe fields from
// the body without re-encoding it, routes it, and answers only after the store
// has durably accepted the event (or refused it as a duplicate).
//
// Ingest never talks to delivery: it hands accepted events to the store, and
// an optional OnAccepted hook lets the caller wake the destinations' workers.
package ingest
