package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// Store backoff bounds: how a dispatcher or worker waits between calls while
// the store fails.
const (
	storeBackoffMin = 100 * time.Millisecond
	storeBackoffMax = 5 * time.Second
	// storeCallTimeout bounds one store call made outside Run's context
	// (recording during a drain must not hang on a dead store forever).
	storeCallTimeout = 10 * time.Second
)

// dispatcher leases one destination's due deliveries and runs each on a
// worker goroutine, never more at once than the destination's concurrency.
type dispatcher struct {
	name  string
	q     Queue
	ep    *endpoint
	set   destSettings
	lease time.Duration
	opts  *Options
	log   *slog.Logger
	wake  chan struct{}
	// done receives one value per finished worker. It is buffered to the
	// concurrency, so a worker never blocks on it, even after run returned.
	done chan struct{}
}

func newDispatcher(q Queue, d config.Destination, opts *Options) (*dispatcher, error) {
	set := settingsFor(d)
	ep, err := newEndpoint(d, set.timeout, set.concurrency, opts.Version)
	if err != nil {
		return nil, err
	}
	return &dispatcher{
		name:  d.Name,
		q:     q,
		ep:    ep,
		set:   set,
		lease: set.timeout + opts.LeaseMargin,
		opts:  opts,
		log:   opts.Logger.With("destination", d.Name),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}, set.concurrency),
	}, nil
}

// run leases and hands out work until ctx ends. Workers run under hard.
func (dp *dispatcher) run(ctx, hard context.Context, workers *sync.WaitGroup) {
	dp.log.Debug("deliver: dispatcher started", "url", dp.ep.redacted, "concurrency", dp.set.concurrency)
	busy := 0
	var backoff time.Duration
	for {
		// Lease no more than there are free workers to take.
		for busy >= dp.set.concurrency {
			select {
			case <-dp.done:
				busy--
			case <-ctx.Done():
				return
			}
		}
		n := dp.set.concurrency - busy
		batch, err := dp.q.Lease(ctx, dp.name, n, dp.lease)
		if ctx.Err() != nil {
			// Deliveries leased as the context ended still get a worker,
			// which releases them at once.
			dp.start(ctx, hard, batch, workers, &busy)
			return
		}
		if err != nil {
			if backoff == 0 {
				dp.log.Error("deliver: lease failed; retrying with backoff until the store answers", "error", err)
			}
			backoff = nextBackoff(backoff)
			if !dp.sleep(ctx, backoff, &busy) {
				return
			}
			continue
		}
		if backoff != 0 {
			dp.log.Info("deliver: store answers again")
			backoff = 0
		}
		dp.start(ctx, hard, batch, workers, &busy)
		if len(batch) == n {
			continue // a full batch: more may be due
		}
		if !dp.idle(ctx, &busy) {
			return
		}
	}
}

func (dp *dispatcher) start(ctx, hard context.Context, batch []store.Delivery, workers *sync.WaitGroup, busy *int) {
	for _, d := range batch {
		*busy++
		workers.Go(func() {
			defer func() { dp.done <- struct{}{} }()
			dp.work(ctx, hard, d)
		})
	}
}

// idle waits for a Wake or the poll interval, counting finished workers
// meanwhile. It returns false when ctx ended.
func (dp *dispatcher) idle(ctx context.Context, busy *int) bool {
	t := time.NewTimer(dp.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-dp.wake:
			return true
		case <-t.C:
			return true
		case <-dp.done:
			*busy--
		case <-ctx.Done():
			return false
		}
	}
}

// sleep waits for d, counting finished workers; false when ctx ended. Wakes
// are left pending: the store is failing, and more calls would not help.
func (dp *dispatcher) sleep(ctx context.Context, d time.Duration, busy *int) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-dp.done:
			*busy--
		case <-ctx.Done():
			return false
		}
	}
}

// nextBackoff doubles b within [storeBackoffMin, storeBackoffMax].
func nextBackoff(b time.Duration) time.Duration {
	return min(max(2*b, storeBackoffMin), storeBackoffMax)
}

// work makes one attempt of d and records its outcome. A delivery that cannot
// be attempted because Relay is shutting down is released, due now.
func (dp *dispatcher) work(ctx, hard context.Context, d store.Delivery) {
	log := dp.log.With("delivery", d.ID, "attempt", d.Attempts+1)
	ext := dp.extend(hard, d, log)
	defer ext.stop()

	if dp.set.limiter != nil {
		if err := dp.set.limiter.Wait(ctx); err != nil {
			dp.release(d, log)
			return
		}
	}
	if ctx.Err() != nil {
		dp.release(d, log)
		return
	}
	if d.Event == nil {
		dp.finish(hard, d, ext, log, result{err: fmt.Errorf("%w (event %s)", ErrNoEvent, d.EventID)})
		return
	}
	res := dp.ep.do(hard, d, dp.opts.Now())
	if res.err != nil && hard.Err() != nil {
		// The drain ran out mid-attempt: not the receiver's failure.
		dp.release(d, log)
		return
	}
	dp.finish(hard, d, ext, log, res)
}

// finish classifies res, records it and reports it.
func (dp *dispatcher) finish(hard context.Context, d store.Delivery, ext *extender, log *slog.Logger, res result) {
	now := dp.opts.Now()
	a := store.Attempt{
		N:        d.Attempts + 1,
		At:       now.Add(-res.took),
		Duration: res.took,
		Status:   res.status,
		Response: res.response,
	}
	outcome, due, why := dp.decide(d, res, now)
	if outcome != OutcomeSuccess {
		a.Error = res.failure().Error()
		if why != "" {
			a.Error += "; " + why
		}
	}
	log = log.With("status", res.status)
	if a.Error != "" {
		log = log.With("error", a.Error)
	}

	var record func(ctx context.Context) error
	switch outcome {
	case OutcomeSuccess:
		log.Debug("deliver: delivered", "took", res.took)
		record = func(ctx context.Context) error { return dp.q.Complete(ctx, d, a) }
	case OutcomeRetry:
		log.Info("deliver: attempt failed; retry scheduled", "due", due)
		record = func(ctx context.Context) error { return dp.q.Retry(ctx, d, a, due) }
	default:
		log.Warn("deliver: dead-lettered")
		record = func(ctx context.Context) error { return dp.q.DeadLetter(ctx, d, a) }
	}
	if dp.opts.OnAttempt != nil {
		dp.opts.OnAttempt(dp.name, outcome, res.status, res.took)
	}
	// The store refuses extensions while it commits an outcome, so stop
	// extending first; the lease has at least two thirds of its time left.
	ext.stop()
	dp.record(hard, ext, log, record)
}

// decide applies the destination's policy to one attempt's result. why is
// set when a failure is final.
func (dp *dispatcher) decide(d store.Delivery, res result, now time.Time) (o Outcome, due time.Time, why string) {
	if res.err == nil && dp.success(res.status) {
		return OutcomeSuccess, time.Time{}, ""
	}
	n := d.Attempts + 1
	switch {
	case errors.Is(res.err, ErrNoEvent) || !dp.opts.CheckRetry(res.status, res.err):
		return OutcomeDead, time.Time{}, "not retryable"
	case n >= dp.set.maxAttempts:
		return OutcomeDead, time.Time{}, fmt.Sprintf("gave up after max_attempts (%d)", dp.set.maxAttempts)
	}
	var resp *http.Response
	if res.status != 0 {
		resp = &http.Response{StatusCode: res.status, Header: res.header}
	}
	due = now.Add(dp.opts.Backoff(dp.set.initial, dp.set.maxInterval, n, resp))
	if deadline := d.CreatedAt.Add(dp.set.maxAge); due.After(deadline) {
		return OutcomeDead, time.Time{}, fmt.Sprintf("gave up: next attempt would pass max_age (%s)", dp.set.maxAge)
	}
	return OutcomeRetry, due, ""
}

func (dp *dispatcher) success(status int) bool {
	if dp.set.success == nil {
		return status >= 200 && status < 300
	}
	return dp.set.success[status]
}

// record runs one outcome write, retrying while the store fails and the
// lease still holds. A lost lease means another worker owns the delivery now;
// giving up otherwise is safe because the lease expires and the delivery is
// attempted again (at-least-once), and it is logged as an error.
func (dp *dispatcher) record(hard context.Context, ext *extender, log *slog.Logger, write func(context.Context) error) {
	var backoff time.Duration
	for {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(hard), storeCallTimeout)
		err := write(ctx)
		cancel()
		switch {
		case err == nil:
			if backoff != 0 {
				log.Info("deliver: outcome recorded after store recovered")
			}
			return
		case errors.Is(err, store.ErrLeaseLost):
			log.Warn("deliver: lease lost before the outcome was recorded; another worker owns the delivery", "store_error", err)
			return
		}
		backoff = nextBackoff(backoff)
		if hard.Err() != nil || dp.opts.Now().Add(backoff).After(ext.expires()) {
			log.Error("deliver: outcome not recorded; the delivery will be attempted again when its lease expires", "store_error", err)
			return
		}
		if backoff == storeBackoffMin {
			log.Warn("deliver: recording outcome failed; retrying", "store_error", err)
		}
		select {
		case <-time.After(backoff):
		case <-hard.Done():
		}
	}
}

// release gives d back, due now, without recording an attempt.
func (dp *dispatcher) release(d store.Delivery, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if err := dp.q.Release(ctx, d, dp.opts.Now()); err != nil {
		log.Warn("deliver: release failed; the delivery is due again when its lease expires", "store_error", err)
		return
	}
	log.Debug("deliver: released")
}

// extender keeps a worker's lease alive while it waits (rate limit) or
// attempts, every lease/3, and tracks when the lease runs out.
type extender struct {
	until atomic.Int64 // unix nanoseconds of the lease's expiry
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (dp *dispatcher) extend(hard context.Context, d store.Delivery, log *slog.Logger) *extender {
	e := &extender{quit: make(chan struct{})}
	e.until.Store(dp.opts.Now().Add(dp.lease).UnixNano())
	e.wg.Go(func() {
		t := time.NewTicker(dp.lease / 3)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-e.quit:
				return
			case <-hard.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(hard, dp.lease/3)
			at := dp.opts.Now()
			err := dp.q.ExtendLease(ctx, d, dp.lease)
			cancel()
			switch {
			case err == nil:
				e.until.Store(at.Add(dp.lease).UnixNano())
				failing = false
			case errors.Is(err, store.ErrLeaseLost):
				log.Warn("deliver: lease lost during the attempt", "store_error", err)
				return
			case !failing:
				failing = true
				log.Warn("deliver: extending lease failed; will try again", "store_error", err)
			}
		}
	})
	return e
}

func (e *extender) expires() time.Time { return time.Unix(0, e.until.Load()) }

// stop ends the extensions; it may be called more than once.
func (e *extender) stop() {
	e.once.Do(func() { close(e.quit) })
	e.wg.Wait()
}
