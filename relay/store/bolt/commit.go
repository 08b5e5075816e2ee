package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// op is one write waiting for the committer.
type op struct {
	ctx   context.Context
	apply func(*batch) error
	// done gets the result for a caller that waits; notify, when set,
	// is called with it instead, by the committer (see finishAsync).
	done   chan error
	notify func(error)
	// outcome marks a delivery outcome, whose caller no longer holds an
	// attempt slot: a short wait for company costs nobody anything.
	outcome bool
}

// answer reports o's result to its caller.
func (o *op) answer(err error) {
	if o.notify != nil {
		o.notify(err)
		return
	}
	o.done <- err
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
	queues map[string]*bbolt.Bucket
}

// queue returns dest's due index, creating it if need be.
func (b *batch) queue(dest string) (*bbolt.Bucket, error) {
	if q := b.queues[dest]; q != nil {
		return q, nil
	}
	q, err := queueBucket(b.tx, dest)
	if err != nil {
		return nil, err
	}
	if b.queues == nil {
		b.queues = make(map[string]*bbolt.Bucket, 1)
	}
	b.queues[dest] = q
	return q, nil
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

// submitOutcome is submit for a delivery outcome (see op.outcome).
func (s *Store) submitOutcome(ctx context.Context, apply func(*batch) error) error {
	return s.submitOp(&op{ctx: ctx, apply: apply, outcome: true})
}

func (s *Store) submitOp(o *op) error {
	o.done = make(chan error, 1)
	if err := s.enqueue(o); err != nil {
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

// enqueue hands o to the committer, which answers it.
func (s *Store) enqueue(o *op) error {
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
// commit's fsync form the next batch.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	ops := make([]*op, 0, s.maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for first := range s.ops {
		ops = append(ops[:0], first)
		ops = s.gather(ops, s.maxBatch, nil)
		if len(ops) < lingerBatch && outcomesOnly(ops) {
			linger.Reset(lingerFor)
			ops = s.gather(ops, lingerBatch, linger.C)
			linger.Stop()
		}
		s.commit(ops)
		clear(ops)
	}
}

// Outcomes that find fewer than lingerBatch writes waiting wait up to
// lingerFor for more, until lingerBatch are waiting, before they commit. A
// commit costs about 250 µs of CPU however many writes it holds (two
// fdatasyncs, the meta page, the upper pages of the trees):
// BenchmarkLeaseComplete spends 27 µs per delivery at 16 outcomes a commit,
// 13 at 64 and 11 at about 950. With 1 ms the backlog benchmark committed
// about 55 outcomes at a time, with 4 ms 150 – 185, and its median ratio to
// the ceiling rose by 2.5 points over four interleaved sets of runs
// (bench/deliver.sh; docs/benchmarks.md, fifth round). Workers hand their
// outcomes over without waiting (CompleteAsync), so the wait holds up no
// attempt; an accept ends it at once, so ingest never pays it. What it
// costs: an outcome becomes durable up to lingerFor later, which widens by
// as much the window in which a crash makes a finished delivery due again.
const (
	lingerBatch = 256
	lingerFor   = 4 * time.Millisecond
)

// gather appends waiting ops to ops, up to limit (at most maxBatch). With
// until nil it takes only what is already waiting; otherwise it also waits,
// until until fires or an op that is not an outcome arrives, after which it
// takes what is waiting up to maxBatch.
func (s *Store) gather(ops []*op, limit int, until <-chan time.Time) []*op {
	limit = min(limit, s.maxBatch)
	for len(ops) < limit {
		var o *op
		ok := true
		if until == nil {
			select {
			case o, ok = <-s.ops:
			default:
				return ops
			}
		} else {
			select {
			case o, ok = <-s.ops:
			case <-until:
				return ops
			}
		}
		if !ok {
			return ops
		}
		ops = append(ops, o)
		if !o.outcome {
			// An accept: take what is waiting and commit.
			until, limit = nil, s.maxBatch
		}
	}
	return ops
}

func outcomesOnly(ops []*op) bool {
	for _, o := range ops {
		if !o.outcome {
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
		return nil, -1, fmt.Errorf("begin: %w: %w", store.ErrUnavailable, err)
	}
	fillForAppends(tx)
	b := &batch{tx: tx, now: time.Now()}
	results = make([]error, len(ops))
	for i, o := range ops {
		err := o.apply(b)
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
		s.log.Error("bolt: commit failed", "ops", len(ops), "err", err)
		return nil, -1, fmt.Errorf("commit: %w: %w", store.ErrUnavailable, err)
	}
	s.commits.Add(1)
	s.leases.drop(b.claimed)
	return results, -1, nil
}

func (s *Store) abort(b *batch) {
	if err := b.tx.Rollback(); err != nil {
		s.log.Error("bolt: rollback failed", "err", err)
	}
	s.leases.unclaim(b.claimed)
}
