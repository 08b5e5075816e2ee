package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Outcome kinds, as the outcome script reads them.
const (
	kindComplete   = "c"
	kindRetry      = "r"
	kindDeadLetter = "d"
)

// outcomeArgs is the number of script arguments per outcome.
const outcomeArgs = 8

// outcomeReq is one settled outcome waiting for its script call.
type outcomeReq struct {
	call
	pt   *part            // the partition of the delivery, from its token
	args [outcomeArgs]any // this outcome's part of the script arguments
}

// outcome records the attempt a of the delivery d, whose lease the caller
// holds, as kind (due is the next attempt's time, for a retry), in an
// outcome script call that concurrent outcomes share.
//
// go-redis retries a call whose reply was lost; if the first run did
// finish, the retry finds the lease gone and the outcome is answered with
// ErrLeaseLost although it was recorded. Callers treat ErrLeaseLost as "not
// mine any more", which is safe either way.
func (s *Store) outcome(ctx context.Context, op, kind string, d store.Delivery, a store.Attempt, due time.Time) error {
	r, err := s.outcomeReq(newCall(ctx, op, d.ID), kind, d, a, due)
	if err != nil {
		return err
	}
	return s.sender(r.pt).outcomes.submit(r)
}

// outcomeAsync is outcome without waiting: done gets what outcome would
// return, once, from the goroutine that sends the shared call (or from
// this one when the outcome cannot be sent). done must not block.
func (s *Store) outcomeAsync(ctx context.Context, op, kind string, d store.Delivery, a store.Attempt, due time.Time, done func(error)) {
	r, err := s.outcomeReq(call{ctx: ctx, op: op, id: d.ID, notify: done}, kind, d, a, due)
	if err != nil {
		done(err)
		return
	}
	s.sender(r.pt).outcomes.submitAsync(r)
}

// outcomeReq checks an outcome and builds its request around c.
func (s *Store) outcomeReq(c call, kind string, d store.Delivery, a store.Attempt, due time.Time) (*outcomeReq, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("redis: %s %s: %w", c.op, d.ID, err)
	}
	if d.Lease == "" {
		return nil, fmt.Errorf("redis: %s %s: no lease token: %w", c.op, d.ID, store.ErrLeaseLost)
	}
	pt := s.tokenPart(d.Lease)
	if pt == nil {
		return nil, fmt.Errorf("redis: %s %s: not a lease token of this store: %w", c.op, d.ID, store.ErrLeaseLost)
	}
	if a.N == 0 {
		a.N = d.Attempts + 1
	}
	r := &outcomeReq{call: c, pt: pt}
	r.args = [outcomeArgs]any{kind, d.ID, d.Lease, encodeAttempt(a), a.Status, a.Error, "", ""}
	if kind == kindRetry {
		r.args[6], r.args[7] = millis(due), nanos(due)
	}
	return r, nil
}

// Settle records an attempt of the leased delivery d as o says, in an
// outcome script call that concurrent outcomes share; see outcomeAsync for
// done. A caller that waits (store.SettleWait) sends the shared calls
// itself, as it did when it had a method of its own.
func (s *Store) Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error)) {
	var op, kind string
	due := time.Time{}
	switch o.State {
	case store.StateDelivered:
		op, kind = "complete", kindComplete
	case store.StatePending:
		op, kind, due = "retry", kindRetry, s.dueOrNow(o.Due)
	case store.StateDead:
		op, kind = "dead-letter", kindDeadLetter
	default:
		done(fmt.Errorf("redis: settle %s: a delivery cannot be settled %q", d.ID, o.State))
		return
	}
	if store.Waited(ctx) {
		done(s.outcome(ctx, op, kind, d, o.Attempt, due))
		return
	}
	s.outcomeAsync(ctx, op, kind, d, o.Attempt, due, done)
}

// outcomeBatch runs the outcome script once for batch, all of partition
// pt unless the script spans the partitions, and sets each request's error
// from its status code.
func (s *Store) outcomeBatch(ctx context.Context, pt *part, batch []*outcomeReq) {
	args := make([]any, 0, 3+outcomeArgs*len(batch))
	args = append(args, pt.prefix, s.retention.Milliseconds(), len(batch))
	for _, r := range batch {
		args = append(args, r.args[:]...)
	}
	if s.spans { // the batch's outcomes are of any partition
		for _, r := range batch {
			args = append(args, r.pt.prefix)
		}
	}
	arr, err := s.runBatch(ctx, pt, s.sc.outcome, args, len(batch))
	s.wrote(err, len(batch))
	for i, r := range batch {
		if err != nil {
			r.err = s.fail(r.op, err) // the same for every request (see submit)
		} else if code, _ := arr[i].(int64); code != codeOK { // the op string only when needed
			r.err = statusErr(r.op+" "+r.id, arr[i])
		}
	}
}
