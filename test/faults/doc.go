// Package faults holds the ledger-checked fault suite: it runs the real
// relay binary (and real redis-servers, and the real agent binary) on
// loopback, posts seed-shaped callbacks at a bounded rate while one fault
// is injected (kill -9, a killed or frozen Redis, a full disk, a flapping
// or absent destination, SIGTERM, a killed agent), and at the end checks
// the ledger of every answer against every delivery: nothing answered 2xx
// is lost, no mid is accepted twice, every duplicate delivery lines up with
// a crash, and every mid answered 2xx is a duplicate when posted again.
//
// The package has tests only. It must not know the relay's internals: it
// talks to the relay the way providers, receivers, agents and operators do
// (HTTP, signals, the config file, /metrics), and it never opens the store.
// The one exception is the clock steps: a Go binary's clock cannot be
// stepped from outside, so they run the relay in-process (relaytest) with
// relay.Options.Clock, and otherwise talk to it the same way.
//
// `go test ./test/faults` runs the fast suite; FAULTS_LONG=1 (make
// test-faults) runs the long one. docs/reliability.md describes each fault
// and records the ledger of the last long run.
package faults
