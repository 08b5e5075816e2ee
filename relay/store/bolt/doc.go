// Package bolt is Relay's embedded store: a store.Store kept in one bbolt file
// (relay.db) inside a directory, needing no server. It is for one process;
// bbolt's file lock keeps a second process out.
//
// Every write that matters is fsynced before the call returns, so an accepted
// event survives kill -9. To make that cheap, writes go through group commit:
// one committer goroutine applies every write that is waiting in a single
// read-write transaction and a single fsync, then answers each caller. While
// one commit is syncing the next batch gathers, so throughput grows with the
// number of concurrent callers without a fixed delay. The one exception is a
// batch of nothing but delivery outcomes, fewer than 1000: it waits for
// company, up to 50ms while no caller waits for the answer (a worker that
// handed its outcome over and went on) and up to 4ms once one does, and any
// other write ends the wait (commit.go).
//
// Time comes from Options.Clock (clock.Real unless a test gives a fake):
// leases, due times, dedupe expiry, retention and the sweep's interval. The
// committer's waits for company are real time: they batch, not schedule.
//
// Leases live in memory only. Leasing is a read-only view over the due
// index plus an in-memory map and costs no fsync; after a restart no lease
// exists, so everything that was in flight is due again at once
// (at-least-once). A lease keeps the delivery record as leased, so that the
// outcome need not read it again, and a destination's next Lease walks its
// due index from after the last delivery leased.
//
// Layout of the file (all top-level buckets):
//
//	meta       "version" -> the storage format (formatVersion, layout.go)
//	events     eventID -> eventRec (the event, plus delivery ids), then the body as received
//	deliveries deliveryID -> deliveryRec (with its newest attempt, "last")
//	attempts   deliveryID 0x00 seq(4, big-endian) -> an older attempt
//	queue      one nested bucket per destination: due(8) deliveryID -> empty (the due index)
//	dlq        deadAt(8) deliveryID -> empty (all destinations, oldest first)
//	dlqdest    one nested bucket per destination: deadAt(8) deliveryID -> empty
//	parked     receivedAt(8) eventID -> empty
//	dedupe     key -> expiry(8) eventID (expiry 0: never)
//	dedupexp   expiry(8) key -> empty (what the sweeper deletes, soonest first)
//	counts     "q" 0x00 dest, "d" 0x00 dest, "p" -> int64(8): the depths
//
// Records are in one binary form (codec.go). There is one storage format
// and no migration: Open marks a file that holds nothing, and refuses one
// that holds data under another marker or none, with a message that says
// to drain it with the relay that wrote it (format.go). A change to the
// layout or the records changes formatVersion.
//
// Times in keys are big-endian unix nanoseconds, so byte order is time order.
//
// The sweep deletes an event with its body, deliveries and attempt logs
// once every delivery of it has been delivered or discarded for longer than
// Options.Retention (retire.go). It needs no index of its own: it walks the
// events bucket, whose ids sort by time, from where it stopped.
//
// It must not know HTTP, routing or delivery policy: it keeps what the store
// contract says and decides nothing about retries. Of config it reads only
// DefaultEmbeddedRetention, the default of an option config also sets.
package bolt
