package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// op is one write waiting for the committer.
type op struct {
	ctx context.Context
	// apply is the write; a delivery outcome has out instead, and may wait
	// for others to share its commit (linger).
	apply func(*batch) error
	out   *outcome
	// done gets the result for a caller that waits; notify, when set,
	// is called with it instead, by the committer (see finishAsync).
	done   chan error
	notify func(error)
	// awaited marks an op with notify whose caller still waits for the
	// answer (store.Awaiting).
	awaited bool
	// probe marks CheckWrite's probe, which reports its own outcome and
	// must not count as a write in the store's WriteHealth.
	probe bool
}

// write runs o's write in b.
func (o *op) write(b *batch) error {
	if o.out != nil {
		return o.out.write(b)
	}
	return o.apply(b)
}

// waited reports whether o's caller waits for its answer.
func (o *op) waited() bool { return o.notify == nil || o.awaited }

// answer reports o's result to its caller; an outcome's caller that does
// not wait gets it as finish would return it.
func (o *op) answer(err error) {
	switch {
	case o.notify != nil && o.out != nil:
		o.notify(o.out.result(err))
	case o.notify != nil:
		o.notify(err)
	default:
		o.done <- err
	}
}

// batch is the state one transaction's ops share.
type batch struct {
	tx  *bbolt.Tx
	now time.Time
	// claimed are the leases that this transaction's outcomes end; they are
	// dropped only once the outcome is durable.
	claimed []claim
	// counts sums the changes to the depth counters, which are written once
	// per transaction rather than read and written once per change.
	counts map[string]int64
	// queues are the due indexes this transaction opened, by destination:
	// finding one again costs a search of the queue bucket for every
	// outcome, and a copy of its name.
	queues map[string]*dueIndex
}

// dueIndex is a destination's due index as one transaction uses it.
type dueIndex struct {
	*bbolt.Bucket
	// c deletes from the index. Bucket.Delete makes a cursor per call,
	// whose stack then grows by an allocation per level of the tree; one
	// cursor per transaction keeps its stack. It seeks before every
	// delete, so writes made since its last use do not mislead it.
	c *bbolt.Cursor
}

// queue returns dest's due index, creating it if need be.
func (b *batch) queue(dest string) (*dueIndex, error) {
	if q := b.queues[dest]; q != nil {
		return q, nil
	}
	bk, err := queueBucket(b.tx, dest)
	if err != nil {
		return nil, err
	}
	if b.queues == nil {
		b.queues = make(map[string]*dueIndex, 1)
	}
	q := &dueIndex{Bucket: bk, c: bk.Cursor()}
	b.queues[dest] = q
	return q, nil
}

// remove deletes key from the index, as Bucket.Delete does: a missing key
// is no error.
func (q *dueIndex) remove(key []byte) error {
	if k, _ := q.c.Seek(key); !bytes.Equal(k, key) {
		return nil
	}
	return q.c.Delete()
}

// count adds delta to the depth counter at key when the batch commits.
func (b *batch) count(key []byte, delta int64) {
	if b.counts == nil {
		b.counts = make(map[string]int64, 4)
	}
	b.counts[string(key)] += delta
}

// writeCounts stores the summed counter changes.
func (b *batch) writeCounts() error {
	for k, delta := range b.counts {
		if delta == 0 {
			continue
		}
		if err := addCount(b.tx, []byte(k), delta); err != nil {
			return fmt.Errorf("count %q: %w", k, err)
		}
	}
	return nil
}

type claim struct {
	id string
	l  *lease
}

// submit queues a write and waits until it is durable or refused.
func (s *Store) submit(ctx context.Context, apply func(*batch) error) error {
	return s.submitOp(&op{ctx: ctx, apply: apply})
}

func (s *Store) submitOp(o *op) error {
	o.done = make(chan error, 1)
	if err := s.handOver(o); err != nil {
		return err
	}
	// Once queued the op may commit even if ctx ends now; the caller then
	// does not learn the outcome, which at-least-once delivery tolerates.
	select {
	case err := <-o.done:
		return err
	case <-o.ctx.Done():
		return o.ctx.Err()
	}
}

// handOver hands o to the committer, which answers it.
func (s *Store) handOver(o *op) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	select {
	case s.ops <- o:
		return nil
	case <-o.ctx.Done():
		return o.ctx.Err()
	}
}

// commitLoop is the committer: it takes whatever ops are waiting, up to
// maxBatch, and commits them in one transaction. Ops that arrive during a
// commit's fsync form the next batch; outcomes may wait for more (linger).
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	ops := make([]*op, 0, s.maxBatch)
	for first := range s.ops {
		ops = append(ops[:0], first)
		ops = s.gather(ops, s.maxBatch)
		if len(ops) < lingerBatch && outcomesOnly(ops) {
			ops = s.linger(ops, lingerBatch, lingerFor, asyncLingerFor)
		}
		s.commit(ops)
		clear(ops)
	}
}

// Outcomes wait for company before they commit, because a commit costs the
// same fsyncs however few writes it holds (docs/benchmarks.md, "Why the
// tuned constants are what they are").
const (
	lingerBatch    = 1000                  // outcomes that end the wait at once
	lingerFor      = 4 * time.Millisecond  // the wait once a caller waits for its answer
	asyncLingerFor = 50 * time.Millisecond // the wait while no caller does; a crash may redo as much
)

// gather appends the ops already waiting to ops, up to limit (at most
// maxBatch), without waiting.
func (s *Store) gather(ops []*op, limit int) []*op {
	limit = min(limit, s.maxBatch)
	for len(ops) < limit {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return ops
			}
			ops = append(ops, o)
		default:
			return ops
		}
	}
	return ops
}

// linger waits for more outcomes to join ops, which are outcomes only, until
// limit ops are waiting (at most maxBatch) or the queue closes; until long
// after it began while every outcome's caller goes on without the answer,
// and short after it began once one waits for it; or until an op that is not
// an outcome arrives, which is committed at once with what waits behind it.
func (s *Store) linger(ops []*op, limit int, short, long time.Duration) []*op {
	limit = min(limit, s.maxBatch)
	// Real time, not s.clock: the wait batches writes and schedules nothing.
	start := time.Now()
	wait := long
	if !asyncOnly(ops) {
		wait = short
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(ops) < limit {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return ops
			}
			ops = append(ops, o)
			if o.out == nil {
				return s.gather(ops, s.maxBatch)
			}
			if o.waited() && wait > short {
				wait = short
				left := short - time.Since(start)
				if left <= 0 {
					return s.gather(ops, limit)
				}
				t.Reset(left)
			}
		case <-t.C:
			return ops
		}
	}
	return ops
}

// asyncOnly reports whether no caller of ops waits for its answer.
func asyncOnly(ops []*op) bool {
	for _, o := range ops {
		if o.waited() {
			return false
		}
	}
	return true
}

func outcomesOnly(ops []*op) bool {
	for _, o := range ops {
		if o.out == nil {
			return false
		}
	}
	return true
}

// commit applies ops in order in one transaction and answers each. An op that
// fails other than by a rejection is answered alone and the rest are applied
// again without it; a failed commit fails the whole batch.
func (s *Store) commit(ops []*op) {
	live := ops[:0:0]
	for _, o := range ops {
		if err := o.ctx.Err(); err != nil {
			o.answer(err)
			continue
		}
		live = append(live, o)
	}
	for len(live) > 0 {
		results, bad, err := s.tryCommit(live)
		if bad < 0 {
			for i, o := range live {
				if err != nil {
					o.answer(err)
				} else {
					o.answer(results[i])
				}
			}
			return
		}
		live[bad].answer(err)
		live = append(live[:bad:bad], live[bad+1:]...)
	}
}

// tryCommit runs one transaction. It returns the index of an op that failed
// (the transaction was rolled back) or -1 with every op's result and the
// commit error, if any.
func (s *Store) tryCommit(ops []*op) (results []error, bad int, err error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		err = fmt.Errorf("begin: %w: %w", store.ErrUnavailable, err)
		s.recordHealth(ops, err)
		return nil, -1, err
	}
	fillForAppends(tx)
	b := &batch{tx: tx, now: s.clock.Now()}
	results = make([]error, len(ops))
	for i, o := range ops {
		err := o.write(b)
		if err != nil && !isReject(err) {
			s.abort(b)
			return nil, i, err
		}
		results[i] = err
	}
	if err := b.writeCounts(); err != nil {
		s.abort(b)
		return nil, -1, fmt.Errorf("commit: %w: %w", store.ErrUnavailable, err)
	}
	if err := tx.Commit(); err != nil {
		s.leases.unclaim(b.claimed)
		// Debug only: every op's caller gets the error and says so, and a
		// second line per refused callback floods the log during an outage.
		s.log.Debug("bolt: commit failed", "ops", len(ops), "err", err)
		err = fmt.Errorf("commit: %w: %w", store.ErrUnavailable, err)
		s.recordHealth(ops, err)
		return nil, -1, err
	}
	s.recordHealth(ops, nil)
	s.commits.Add(1)
	s.leases.drop(b.claimed)
	return results, -1, nil
}

// recordHealth counts a commit's outcome for CheckWrite; a commit of the
// probe alone counts nothing.
func (s *Store) recordHealth(ops []*op, err error) {
	n := 0
	for _, o := range ops {
		if !o.probe {
			n++
		}
	}
	if n > 0 {
		s.health.Record(err, n)
	}
}

func (s *Store) abort(b *batch) {
	if err := b.tx.Rollback(); err != nil {
		s.log.Error("bolt: rollback failed", "err", err)
	}
	s.leases.unclaim(b.claimed)
}
