package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// finish commits an outcome for a leased delivery: it checks that d's lease
// is still held, then lets fn change the record as it was leased (see
// lease.rec), then stores it.
func (s *Store) finish(ctx context.Context, what string, d store.Delivery, fn func(*batch, *deliveryRec) error) error {
	return outcomeErr(what, d, s.submitOutcome(ctx, s.outcomeOp(d, fn)))
}

func outcomeErr(what string, d store.Delivery, err error) error {
	if err != nil {
		return fmt.Errorf("bolt: %s %s: %w", what, d.ID, err)
	}
	return nil
}

// finishAsync is finish without waiting for the commit: done gets what
// finish would return, once, from the committer goroutine when the outcome
// is durable or refused (or from this call when it cannot be queued). done
// must not block: the commits of everyone else wait for it.
func (s *Store) finishAsync(ctx context.Context, what string, d store.Delivery, fn func(*batch, *deliveryRec) error, done func(error)) {
	o := &op{ctx: ctx, apply: s.outcomeOp(d, fn), outcome: true,
		notify: func(err error) { done(outcomeErr(what, d, err)) }}
	if err := s.enqueue(o); err != nil {
		o.notify(err)
	}
}

// CompleteAsync is Complete without waiting; see finishAsync for done.
// A worker that does not wait for its outcome's commit is free for the
// next attempt at once, and nobody has to be woken when the commit ends.
func (s *Store) CompleteAsync(ctx context.Context, d store.Delivery, a store.Attempt, done func(error)) {
	s.finishAsync(ctx, "complete", d, completed(a), done)
}

// RetryAsync is Retry without waiting; see finishAsync for done.
func (s *Store) RetryAsync(ctx context.Context, d store.Delivery, a store.Attempt, due time.Time, done func(error)) {
	s.finishAsync(ctx, "retry", d, retried(a, due), done)
}

// DeadLetterAsync is DeadLetter without waiting; see finishAsync for done.
func (s *Store) DeadLetterAsync(ctx context.Context, d store.Delivery, a store.Attempt, done func(error)) {
	s.finishAsync(ctx, "dead-letter", d, deadLettered(a), done)
}

// outcomeOp is the write of finish. The committer may apply it more than
// once (when another write of its transaction fails); each time starts from
// a fresh copy of the leased record.
func (s *Store) outcomeOp(d store.Delivery, fn func(*batch, *deliveryRec) error) func(*batch) error {
	return func(b *batch) error {
		rec, err := s.leases.claim(b, d.ID, d.Lease)
		if err != nil {
			return reject(err)
		}
		if err := fn(b, rec); err != nil {
			return err
		}
		rec.UpdatedAt = b.now
		return putDelivery(b.tx, rec)
	}
}

// Complete records a successful attempt and finishes the delivery.
func (s *Store) Complete(ctx context.Context, d store.Delivery, a store.Attempt) error {
	return s.finish(ctx, "complete", d, completed(a))
}

func completed(a store.Attempt) func(*batch, *deliveryRec) error {
	return func(b *batch, rec *deliveryRec) error {
		if err := unqueue(b, rec, true); err != nil {
			return err
		}
		rec.State = store.StateDelivered
		return appendAttempt(b.tx, rec, a)
	}
}

// Retry records a failed attempt and schedules the next one at due.
func (s *Store) Retry(ctx context.Context, d store.Delivery, a store.Attempt, due time.Time) error {
	return s.finish(ctx, "retry", d, retried(a, due))
}

func retried(a store.Attempt, due time.Time) func(*batch, *deliveryRec) error {
	return func(b *batch, rec *deliveryRec) error {
		if err := appendAttempt(b.tx, rec, a); err != nil {
			return err
		}
		return reschedule(b, rec, due)
	}
}

// Release gives a leased delivery back, due at due, recording no attempt.
func (s *Store) Release(ctx context.Context, d store.Delivery, due time.Time) error {
	return s.finish(ctx, "release", d, func(b *batch, rec *deliveryRec) error {
		return reschedule(b, rec, due)
	})
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

// DeadLetter records the last attempt and moves the delivery to the DLQ.
func (s *Store) DeadLetter(ctx context.Context, d store.Delivery, a store.Attempt) error {
	return s.finish(ctx, "dead-letter", d, deadLettered(a))
}

func deadLettered(a store.Attempt) func(*batch, *deliveryRec) error {
	return func(b *batch, rec *deliveryRec) error {
		if err := unqueue(b, rec, true); err != nil {
			return err
		}
		if err := appendAttempt(b.tx, rec, a); err != nil {
			return err
		}
		rec.State = store.StateDead
		rec.DeadAt = b.now.UnixNano()
		return putDead(b, rec)
	}
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
