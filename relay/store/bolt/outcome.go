package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// An outcome is one of four changes to a leased delivery's record.
type changeKind uint8

const (
	changeComplete changeKind = iota
	changeRetry
	changeRelease
	changeDeadLetter
)

// changeNames name the changes in errors.
var changeNames = [...]string{
	changeComplete:   "complete",
	changeRetry:      "retry",
	changeRelease:    "release",
	changeDeadLetter: "dead-letter",
}

// change is what an outcome does to a leased delivery's record: its kind,
// the attempt it records (none for a release) and when the delivery is due
// next (retry, release). It is data rather than a function so that an
// outcome and its op are one allocation: the committer takes 20 000 of
// them a second.
type change struct {
	kind changeKind
	a    store.Attempt
	due  time.Time
}

// apply makes the change to rec, the record as leased, and to the indexes.
func (c *change) apply(b *batch, rec *deliveryRec) error {
	switch c.kind {
	case changeComplete:
		if err := unqueue(b, rec, true); err != nil {
			return err
		}
		rec.State = store.StateDelivered
		return logAttempt(b.tx, rec, c.a)
	case changeRetry:
		if err := logAttempt(b.tx, rec, c.a); err != nil {
			return err
		}
		return reschedule(b, rec, c.due)
	case changeRelease:
		return reschedule(b, rec, c.due)
	}
	// changeDeadLetter
	if err := unqueue(b, rec, true); err != nil {
		return err
	}
	if err := logAttempt(b.tx, rec, c.a); err != nil {
		return err
	}
	rec.State = store.StateDead
	rec.DeadAt = b.now.UnixNano()
	return putDead(b, rec)
}

// outcome is a delivery outcome waiting for the committer: the op and the
// write it runs (op.out points back here).
type outcome struct {
	op
	s *Store
	d store.Delivery
	c change
	// rec is the record that write changes, copied from the lease.
	rec deliveryRec
}

func (s *Store) newOutcome(ctx context.Context, d store.Delivery, c change) *outcome {
	w := &outcome{s: s, d: d, c: c}
	w.op = op{ctx: ctx, out: w}
	return w
}

// write is the outcome's write. It checks that d's lease is still held and
// starts from the record as it was leased (see lease.rec). The committer
// may run it more than once (when another write of its transaction fails);
// each run starts from a fresh copy of that record.
func (w *outcome) write(b *batch) error {
	rec := &w.rec
	if err := w.s.leases.claim(b, w.d.ID, w.d.Lease, rec); err != nil {
		return reject(err)
	}
	if err := w.c.apply(b, rec); err != nil {
		return err
	}
	rec.UpdatedAt = b.now
	return putDelivery(b.tx, rec)
}

// result is what the outcome's caller gets for the write's err.
func (w *outcome) result(err error) error {
	if err != nil {
		return fmt.Errorf("bolt: %s %s: %w", changeNames[w.c.kind], w.d.ID, err)
	}
	return nil
}

// finish commits an outcome for a leased delivery and waits until it is
// durable or refused.
func (s *Store) finish(ctx context.Context, d store.Delivery, c change) error {
	w := s.newOutcome(ctx, d, c)
	return w.result(s.submitOp(&w.op))
}

// finishAsync is finish without waiting for the commit: done gets what
// finish would return, once, from the committer goroutine when the outcome
// is durable or refused (or from this call when it cannot be queued). done
// must not block: the commits of everyone else wait for it.
func (s *Store) finishAsync(ctx context.Context, d store.Delivery, c change, done func(error)) {
	w := s.newOutcome(ctx, d, c)
	w.notify = done
	w.awaited = store.Awaited(ctx)
	if err := s.handOver(&w.op); err != nil {
		w.answer(err)
	}
}

// Settle records an attempt of the leased delivery d as o says; see
// finishAsync for done. A worker that does not wait for its outcome's
// commit is free for the next attempt at once, and nobody has to be woken
// when the commit ends; a caller that waits (store.SettleWait) is
// committed with less delay.
func (s *Store) Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error)) {
	c := change{a: o.Attempt, due: o.Due}
	switch o.State {
	case store.StateDelivered:
		c.kind = changeComplete
	case store.StatePending:
		c.kind = changeRetry
	case store.StateDead:
		c.kind = changeDeadLetter
	default:
		done(fmt.Errorf("bolt: settle %s: a delivery cannot be settled %q", d.ID, o.State))
		return
	}
	if store.Waited(ctx) {
		done(s.finish(ctx, d, c))
		return
	}
	s.finishAsync(ctx, d, c, done)
}

// Release gives a leased delivery back, due at due, recording no attempt.
func (s *Store) Release(ctx context.Context, d store.Delivery, due time.Time) error {
	return s.finish(ctx, d, change{kind: changeRelease, due: due})
}

// reschedule moves rec's due-index entry to due.
func reschedule(b *batch, rec *deliveryRec, due time.Time) error {
	if err := unqueue(b, rec, false); err != nil {
		return err
	}
	rec.DueAt = due
	q, err := b.queue(rec.Destination)
	if err != nil {
		return err
	}
	return q.Put(dueKey(&rec.Delivery), empty)
}

func putDead(b *batch, rec *deliveryRec) error {
	k := timeKey(rec.DeadAt, rec.ID)
	if err := b.tx.Bucket(bucketDLQ).Put(k, empty); err != nil {
		return err
	}
	dq, err := dlqDestBucket(b.tx, rec.Destination)
	if err != nil {
		return err
	}
	if err := dq.Put(k, empty); err != nil {
		return err
	}
	b.count(deadKey(rec.Destination), 1)
	return nil
}

func deleteDead(b *batch, rec *deliveryRec) error {
	k := timeKey(rec.DeadAt, rec.ID)
	if err := b.tx.Bucket(bucketDLQ).Delete(k); err != nil {
		return err
	}
	dq, err := dlqDestBucket(b.tx, rec.Destination)
	if err != nil {
		return err
	}
	if err := dq.Delete(k); err != nil {
		return err
	}
	b.count(deadKey(rec.Destination), -1)
	return nil
}

// takeDead takes delivery id out of the DLQ for ReplayDLQ and DeleteDLQ;
// ErrNotFound (as a rejection of this write only) when it is not dead.
func takeDead(b *batch, id string) (*deliveryRec, error) {
	rec, err := getDelivery(b.tx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, reject(err)
	case err != nil:
		return nil, err
	case rec.State != store.StateDead:
		return nil, reject(fmt.Errorf("not dead-lettered: %w", store.ErrNotFound))
	}
	if err := deleteDead(b, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// ReplayDLQ moves a dead delivery back into its queue, due now, with its
// attempt count and age reset. Its attempt log is kept.
func (s *Store) ReplayDLQ(ctx context.Context, id string) error {
	err := s.submit(ctx, func(b *batch) error {
		rec, err := takeDead(b, id)
		if err != nil {
			return err
		}
		rec.State = store.StatePending
		rec.Attempts = 0
		rec.DeadAt = 0
		rec.CreatedAt, rec.DueAt, rec.UpdatedAt = b.now, b.now, b.now
		if err := enqueue(b, rec); err != nil {
			return err
		}
		return putDelivery(b.tx, rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: replay dlq %s: %w", id, err)
	}
	return nil
}
