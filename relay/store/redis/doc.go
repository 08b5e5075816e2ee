// Package redis is the Redis backend of store.Store, for deployments where
// several relay processes share one Redis and split the work.
//
// Every key lives under Options.Prefix. Every step that touches more than one
// key is one Lua script (EVALSHA, loaded once), so a crash or a lost
// connection never leaves a dedupe claim without its event and deliveries.
// Accept is one script call per event, except that Accepts arriving while
// others are on their way share the next call: the script still decides
// each event on its own, and each caller is answered once the call is done.
// Outcomes (Settle) share calls of the outcome script
// the same way (batch.go), each answered with its own error; within a call
// the script reads the clock once and writes what its outcomes change in
// one key (a queue, the depth counters, the DLQ, the expiry index) once.
//
// # Keys
//
//	ev:{event id}      hash: e nd ca, and out dlvs parked dests when needed
//	dlv:{delivery id}  hash: id ev dest st n ca due ua ls le tok lu od la nd
//	                   (written by the first lease, see below)
//	att:{delivery id}  list of the attempts before the newest, oldest
//	                   first (absent until a second attempt)
//	q:{destination}    sorted set of pending delivery ids, scored by due ms
//	                   (less half a ms for implicit ones, see below)
//	lz:{destination}   sorted set of leased delivery ids, scored by the
//	                   lease's expiry ms (see Queues and time)
//	dlq, dlq:{dest}    sorted sets of dead delivery ids, scored by seq
//	parked             sorted set of parked event ids, scored by seq
//	seq                counter that orders the DLQ and parked sets
//	dd:{dedupe key}    string: id of the event holding the claim, PX = TTL
//	depth              hash of counters: q:{dest}, d:{dest}, parked
//	evidx              sorted set of event ids, all scored 0 so they sort by id
//	                   (by time): the FindEvents index
//	evexp              sorted set of retired event ids, scored by expiry ms;
//	                   their evidx entries are dropped once expired
//	probe              string written by CheckWrite, PX one minute
//	format             string: the version of this layout (see Format)
//
// Times in hashes are Unix nanoseconds as decimal strings; "nd" says how
// many deliveries the event has and "dlvs" lists their ids (left out when
// they are all derived from the event id, below).
//
// An event with more than one delivery has "out": how many of them are not
// yet finished (delivered, or deleted from the DLQ); the outcome that takes
// it to 0 retires the event (see Retention). An event with one delivery has
// no "out": the outcome that finishes that delivery retires the event
// without counting. The lease copies the event's "nd" into the delivery's
// hash when it is 1, or when the event has no "dlvs" (its ids follow from
// its id and "nd"), so an outcome knows the event's only delivery, and the
// ids of the event it retires, without reading the event; without "nd" in
// its hash, a delivery's end counts "out" down and reads the ids from the
// event's "dlvs".
//
// A delivery's newest attempt is its hash's "la"; the next attempt first
// appends it to the att list. So an outcome that is the delivery's first
// attempt, as most are, writes the hash only, and the list exists only for
// deliveries tried more than once. The log reads as the list, then "la".
// Attempts are stored in a compact text form (attempt.go), short enough
// that "la" keeps the hash a listpack.
//
// The event fields that never change are packed into one, "e" (pack.go):
// id, webhook id, dedupe value, content type, received time and the
// destinations JSON, each length-prefixed, then the body. Any real body makes
// the hash a table of separately allocated entries, which the accept script
// paid for per field; no script reads inside "e", only the decoders do.
// "ca" is the creation time (the script's clock), also the received time
// when the caller gave none. "parked" is "1" on a parked event and absent
// otherwise until replay_parked sets it to "0", together with a "dests"
// field that wins over the packed one.
//
// Accept writes no dlv hash for an event whose id the store made ("evt_X"):
// its deliveries get the ids "dlv_X_1", "dlv_X_2", ... in route order, and
// until its first lease such a delivery is implicit: pending, no attempt,
// created and due at the event's "ca", known by its queue entry and its
// event. Lease writes the hash before handing it out; the outcome scripts
// need a lease, so they always find one; Event and FindEvents build the
// missing ones from the event. This keeps a third of the memory and AOF
// writes off the accept path. Accept queues an implicit delivery half a
// millisecond before its due ms: the only queue scores that are not whole
// numbers, as every later change of a score writes a whole one (together
// with the hash), so the lease knows from the score alone whether there is
// a hash to read.
//
// # Format
//
// The keys above are format "1" (formatVersion), the only one this package
// reads; the format key says so. Open checks it: a keyspace with no relay
// key (the probe aside) gets the marker, SET NX, so relays starting
// together agree; relay data without the marker or with another version is
// refused with an error that names the prefix and both formats. There is
// no migration before the first release. When Open cannot reach Redis, the
// first call that does checks instead. The marker never expires, and the
// accept script writes it again when Redis lost it with everything else
// (restarted without persistence, flushed), so no relay data is ever
// without it; a marker of another version stops the accept script and
// sends the Store back to checking, as at Open.
//
// # Queues and time
//
// Each destination's queue is a visibility-timeout queue: Lease takes due
// members and moves their score to now+lease, storing a fresh lease token in
// the delivery hash. A worker that dies simply lets the score come due, and
// any process leasing that destination takes the delivery over; its old token
// no longer matches, so its late outcome is refused with store.ErrLeaseLost.
// The lease keeps the due time the delivery had ("od") and indexes the lease
// by expiry (lz:{destination}): a lease that ran out unextended puts its
// delivery back at "od", so a survivor reaches it in due order.
// "Now" is always the Redis server's TIME, read inside the scripts, so
// processes with skewed clocks agree on due times and lease expiry, and
// tests cannot move it: they wait for it. Absolute times that callers pass
// (Settle's and Release's due times) are used as given, a zero one as
// Options.Clock's now.
//
// # Retention
//
// When an event's last delivery is delivered, the event, its deliveries and
// attempt logs expire after Options.Retention (so do those of an event whose
// last unfinished delivery is deleted from the DLQ). Dead deliveries keep their
// event until they are replayed and delivered; parked events keep until they
// are replayed. Dedupe claims expire after their own TTL.
//
// # Durability and errors
//
// Accept returns once Redis has executed the script; how durable that is
// depends on the server's appendonly/appendfsync settings ("appendfsync
// always" for no loss on a host crash, "everysec" to lose at most about a
// second). While Redis cannot be reached every method returns an error
// wrapping store.ErrUnavailable.
//
// The scripts build key names at run time. On a standalone Redis (or one
// behind Sentinel) that needs nothing more; with Options.Cluster
// (store.redis.cluster) the prefix becomes one hash tag, so every key, and
// so every script, is on one slot of the cluster (docs/benchmarks.md,
// Redis Cluster).
//
// This package must not know HTTP, routing or delivery policy: it stores
// what the store contract says and decides nothing about retries. Of
// package config it reads only the defaults of its options (prefix and
// retention), so that they have one home.
package redis
