package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Accepts that arrive while others are on their way to Redis share one
// script call: under load most of an accept's cost is the round trip and the
// script call itself (syscalls on both sides, EVALSHA setup), not the writes.
// A lone Accept is sent at once, by its own goroutine, so batching adds no
// delay when there is nothing to batch with.
const (
	// maxAcceptBatch caps the events of one call, which bounds the
	// arguments and the time Redis spends in one script.
	maxAcceptBatch = 64
	// maxAcceptCalls caps the calls in flight. Requests that arrive while
	// all are busy wait and go together in the next call. With two, Redis
	// runs one call while the other's reply travels and its callers are
	// answered; on an idle two-core machine under wrk -c64 that gave about
	// 5% more callbacks per second than one call (batches of ~15 events
	// instead of ~28) and than four (~8).
	maxAcceptCalls = 2
)

// acceptReq is one Accept waiting for its script call.
type acceptReq struct {
	ctx  context.Context
	id   string
	args []any // this event's part of the script arguments
	res  store.AcceptResult
	err  error
	done chan struct{}
}

// acceptQueue holds the Accepts waiting for a call.
type acceptQueue struct {
	mu      sync.Mutex
	waiting []*acceptReq
	calls   int // calls in flight, at most maxAcceptCalls
}

// submitAccept queues r and, unless enough calls are already in flight,
// sends calls until r is answered. It returns when r is answered or its ctx
// ends; a write already sent may still happen then, which the caller's retry
// (same dedupe key) turns into a duplicate.
func (s *Store) submitAccept(r *acceptReq) (store.AcceptResult, error) {
	q := &s.accepts
	q.mu.Lock()
	q.waiting = append(q.waiting, r)
	send := q.calls < maxAcceptCalls
	if send {
		q.calls++
	}
	q.mu.Unlock()
	if send {
		s.sendAccepts(r)
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-r.ctx.Done():
		return store.AcceptResult{}, s.fail("accept "+r.id, r.ctx.Err())
	}
}

// sendAccepts sends the waiting Accepts, up to maxAcceptBatch per call, until
// mine is answered; what is still waiting then is handed to a new goroutine,
// so that no caller waits for other callers' calls. mine nil means: until
// nothing waits.
func (s *Store) sendAccepts(mine *acceptReq) {
	q := &s.accepts
	for {
		q.mu.Lock()
		if len(q.waiting) == 0 {
			q.calls--
			q.mu.Unlock()
			return
		}
		if mine != nil && answered(mine) {
			q.mu.Unlock()
			go s.sendAccepts(nil)
			return
		}
		n := min(len(q.waiting), maxAcceptBatch)
		batch := make([]*acceptReq, n)
		copy(batch, q.waiting)
		rest := copy(q.waiting, q.waiting[n:])
		clear(q.waiting[rest:])
		q.waiting = q.waiting[:rest]
		q.mu.Unlock()
		s.acceptBatch(batch)
	}
}

func answered(r *acceptReq) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// acceptBatch runs the accept script once for the live requests of batch
// and answers each of them.
func (s *Store) acceptBatch(batch []*acceptReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = s.fail("accept "+r.id, err)
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	n := 0
	for _, r := range live {
		n += len(r.args)
	}
	// The whole argument list at once, prefix first: s.run would copy it.
	args := append(make([]any, 0, n+2), s.prefix, len(live))
	for _, r := range live {
		args = append(args, r.args...)
	}
	var reply any
	err := s.check()
	if err == nil {
		reply, err = s.sc.accept.Run(ctx, s.rdb, nil, args...).Result()
	}
	var arr []any
	if err == nil {
		if arr, err = array(reply); err == nil && len(arr) != len(live) {
			err = fmt.Errorf("%d values for %d events", len(arr), len(live))
		}
		if err != nil {
			err = fmt.Errorf("bad reply: %w", err)
		}
	}
	for i, r := range live {
		if err != nil {
			r.err = s.fail("accept "+r.id, err)
		} else if nd, isInt := arr[i].(int64); isInt {
			r.res = store.AcceptResult{EventID: r.id, Deliveries: int(nd)}
		} else { // a duplicate: the id of the event holding the claim
			r.res = store.AcceptResult{EventID: text(arr[i]), Duplicate: true}
		}
		close(r.done)
	}
}

// batchContext bounds a call by the latest deadline of its requests, or by
// none if one of them has none: no request gives up before it must.
func batchContext(rs []*acceptReq) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range rs {
		d, ok := r.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
