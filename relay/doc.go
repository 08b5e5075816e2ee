// Package relay assembles a running Relay from a config: it opens the store,
// compiles the routes, and runs the ingest listener, the delivery workers and
// the admin listener until its context ends, then shuts them down in order
// (stop taking callbacks, drain deliveries, close the store).
//
// The domain types shared by every stage live in package store, whose Store
// interface is the only place where ingest and delivery meet.
package relay
