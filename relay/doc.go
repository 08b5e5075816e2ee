// Package relay assembles a running Relay from a config: it opens the store,
// compiles the routes, and runs the ingest listener, the delivery workers,
// the agent endpoint and the admin listener (API and metrics) until its
// context ends.
//
// It also owns what changes while it runs: Server.Reload swaps in a new
// config file (destinations first, then routes), and the shutdown drains in
// order — new callbacks get 503 while those inside finish their write,
// attempts in flight finish within the drain deadline and the rest are
// released to the queue, then the listeners and the store close. Signals
// are the command's business (cmd/relay): library code never touches them.
//
// The domain types shared by every stage live in package store, whose Store
// interface is the only place where ingest and delivery meet.
//
// It must not hold the rules of its parts: each stage's behaviour lives in its
// own package, and this one only wires them together and owns their lifecycle.
package relay
