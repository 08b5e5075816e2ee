package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Requests that arrive while others are on their way to Redis share one
// script call: under load most of a request's cost is the round trip and the
// script call itself (syscalls on both sides, EVALSHA setup), not the writes.
// A lone request is sent at once, by its own goroutine, so batching adds no
// delay when there is nothing to batch with. Accepts share accept calls
// (acceptBatch) and outcomes share outcome calls (outcomeBatch); each script
// still decides every request of a call on its own, in order.
const (
	// maxBatch caps the requests of one call, which bounds the arguments
	// and the time Redis spends in one script.
	maxBatch = 64
	// maxAcceptCalls caps the accept calls in flight. Requests that arrive
	// while all are busy wait and go together in the next call. With two,
	// Redis runs one call while the other's reply travels and its callers
	// are answered; on an idle two-core machine under wrk -c64 that gave
	// about 5% more callbacks per second than one call (batches of ~15
	// events instead of ~28) and than four (~8).
	maxAcceptCalls = 2
	// maxOutcomeCalls caps the outcome calls in flight. An outcome is
	// recorded after its worker's attempt slot is freed, so it is off the
	// path of the next attempt and waiting costs little, while Redis CPU
	// goes mostly per script call and per command. With one call,
	// BenchmarkLeaseComplete ran 0.30 calls per delivery instead of 0.42,
	// and the delivery benchmark batches of ~7 outcomes.
	maxOutcomeCalls = 1
)

// call is the part every batched request has: its caller's context, its
// operation and id for errors, its error, and how it is answered: a channel
// closed for a caller that waits (submit), or notify called with the error
// for one that does not (submitAsync).
type call struct {
	ctx    context.Context
	op     string // "accept", "complete", ...
	id     string
	err    error
	done   chan struct{}
	notify func(error)
}

func newCall(ctx context.Context, op, id string) call {
	return call{ctx: ctx, op: op, id: id, done: make(chan struct{})}
}

// answer reports c.err to c's caller.
func (c *call) answer() {
	if c.notify != nil {
		c.notify(c.err)
		return
	}
	close(c.done)
}

func (c *call) base() *call { return c }

// answered reports whether c's done channel is closed.
func (c *call) answered() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// request is a batched request: a type that embeds call.
type request interface{ base() *call }

// batcher sends the requests submitted to it in shared calls.
type batcher[R request] struct {
	// send runs one call for batch under ctx and sets each request's
	// result (err included); the batcher then answers them. Every request
	// of batch has a live context when send starts.
	send func(ctx context.Context, batch []R)
	// fail wraps a request's error with its operation and id.
	fail func(op string, err error) error
	// maxCalls caps the calls in flight.
	maxCalls int

	mu      sync.Mutex
	waiting []R
	calls   int // calls in flight
}

// submit queues r and, unless enough calls are already in flight, sends
// calls until r is answered. It returns r's error once r is answered, or its
// ctx's error when that ends first; a write already sent may still happen
// then.
func (b *batcher[R]) submit(r R) error {
	c := r.base()
	if b.queue(r) {
		b.drain(c)
	}
	select {
	case <-c.done:
		return c.err
	case <-c.ctx.Done():
		// Without the id: an outage fails every request alike, and the
		// same text lets the log collapse them into one line.
		return b.fail(c.op, c.ctx.Err())
	}
}

// submitAsync queues r, whose call has notify set and no done channel, and
// returns at once; notify gets r's error once it is answered, from the
// goroutine that sent r's call. Unless enough calls are in flight, a new
// goroutine sends calls until nothing waits.
func (b *batcher[R]) submitAsync(r R) {
	if b.queue(r) {
		go b.drain(nil)
	}
}

// queue adds r to the waiting requests and reports whether the caller must
// start sending calls (a call's place was free and is now taken).
func (b *batcher[R]) queue(r R) (send bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting = append(b.waiting, r)
	send = b.calls < b.maxCalls
	if send {
		b.calls++
	}
	return send
}

// drain sends the waiting requests, up to maxBatch per call, until mine is
// answered; what is still waiting then is handed to a new goroutine, so that
// no caller waits for other callers' calls. mine nil means: until nothing
// waits.
func (b *batcher[R]) drain(mine *call) {
	for {
		b.mu.Lock()
		if len(b.waiting) == 0 {
			b.calls--
			b.mu.Unlock()
			return
		}
		if mine != nil && mine.answered() {
			b.mu.Unlock()
			go b.drain(nil)
			return
		}
		n := min(len(b.waiting), maxBatch)
		batch := make([]R, n)
		copy(batch, b.waiting)
		rest := copy(b.waiting, b.waiting[n:])
		clear(b.waiting[rest:])
		b.waiting = b.waiting[:rest]
		b.mu.Unlock()
		b.run(batch)
	}
}

// run sends one call for the requests of batch whose context is still live,
// answers those whose context ended with its error, and answers the others
// once the call is done.
func (b *batcher[R]) run(batch []R) {
	live := batch[:0]
	for _, r := range batch {
		c := r.base()
		if err := c.ctx.Err(); err != nil {
			c.err = b.fail(c.op, err)
			c.answer()
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	b.send(ctx, live)
	for _, r := range live {
		r.base().answer()
	}
}

// runBatch runs a batch script in partition pt with args (its prefix first)
// and returns its reply, one value per request of the batch.
func (s *Store) runBatch(ctx context.Context, pt *part, sc *goredis.Script, args []any, n int) ([]any, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	reply, err := sc.Run(ctx, s.rdb, pt.route, args...).Result()
	if err != nil {
		return nil, err
	}
	arr, err := array(reply)
	if err == nil && len(arr) != n {
		err = fmt.Errorf("%d values for %d requests", len(arr), n)
	}
	if err != nil {
		return nil, fmt.Errorf("bad reply: %w", err)
	}
	return arr, nil
}

// batchContext bounds a call by the latest deadline of its requests, or by
// none if one of them has none: no request gives up before it must.
func batchContext[R request](rs []R) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range rs {
		d, ok := r.base().ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
