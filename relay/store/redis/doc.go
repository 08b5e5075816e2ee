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
// # Partitions
//
// Events and their deliveries are spread over a fixed number of partitions
// (Options.Partitions, store.redis.partitions; partition.go). Each is a
// whole keyspace of the layout below under a prefix of its own: with one
// partition the store's prefix, with N > 1 the prefix and the partition's
// hash tag, "<prefix>{p}:" for p from 0 to N-1. An event's partition is
// FNV-1a of its dedupe claim key, or of its id when it has none, mod N: the
// claim, the event, its deliveries and their queue entries are in one
// partition, so every script touches one partition, which on Redis Cluster
// is one hash slot. Keys named "global" below (depth, seq, evidx, evexp,
// dlq, parked) are per partition; the store derives the whole: Depths sums
// the partitions' counters, ListDLQ and ListParked merge the partitions'
// sets by score and partition (a cursor of N > 1 is "score-p"), FindEvents
// merges their search indexes by id (its cursor is an id, as with one).
// A lease token starts with its partition ("p-"), so ExtendLease, Release
// and outcomes go straight to it; a lookup by id (Event, Delivery, the DLQ
// and parked actions) tries the partition the id hashes to, then the
// others, since a deduped event lives where its claim key hashes.
//
// Lease takes the n oldest due deliveries of all partitions, ties by id as
// within one queue, so none starves. On one Redis a script may touch every
// partition: one lease script merges their queues and leases, and accepts
// and outcomes of any partition share one batched call, as with one
// partition. On a cluster a lease reads every partition's queue head (a
// pipeline of plain reads and TIME), then runs the lease script in each
// partition that holds some of the n oldest, and accepts and outcomes are
// batched per partition.
//
// # Keys
//
// Per partition, under its prefix:
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
//	dlq, dlq:{dest}    sorted sets of dead delivery ids, scored by stamp
//	parked             sorted set of parked event ids, scored by stamp
//	seq                the last stamp given: stamps are the server's clock in
//	                   µs, kept above the last, so a partition's sets list in
//	                   the order members came and partitions merge by time
//	dd:{dedupe key}    string: id of the event holding the claim, PX = TTL
//	depth              hash of counters: q:{dest}, d:{dest}, parked
//	evidx              sorted set of event ids, all scored 0 so they sort by id
//	                   (by time): the FindEvents index
//	evexp              sorted set of retired event ids, scored by expiry ms;
//	                   their evidx entries are dropped once expired
//	probe              string written by CheckWrite, PX one minute
//	format             string: the version of this layout and, with N > 1,
//	                   "/N" (see Format)
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
// reads; each partition's format key says so, followed by "/N" when there
// are N > 1 partitions ("1/16"), so that a relay configured with another
// number refuses the data with an error naming both numbers: the number
// cannot change for existing data. One partition's keys are those of the
// layout before partitions, which opens as it was. Open checks every
// partition's marker, and the markers of the other layouts under the same
// prefix (that of one partition, or partition 0 of several): a keyspace
// with no relay key (the probe aside) gets the markers, SET NX, so relays
// starting together agree; relay data without the marker or with another
// version is refused with an error that names the prefix and both formats. There is
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
// behind Sentinel) that needs nothing more. With Options.Cluster
// (store.redis.cluster) each script runs with its partition's prefix as its
// key, so on that key's slot; with one partition the prefix becomes one
// hash tag ("{relay:}"), and a prefix that holds a tag is refused with
// several. With a master down and no replica, calls of its partitions fail
// as unavailable while the others go on (with the cluster's
// cluster-require-full-coverage off; docs/benchmarks.md, Redis Cluster).
//
// This package must not know HTTP, routing or delivery policy: it stores
// what the store contract says and decides nothing about retries. Of
// package config it reads only the defaults of its options (prefix and
// retention), so that they have one home.
package redis
