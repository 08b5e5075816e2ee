package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Store backoff bounds: how a dispatcher or worker waits between calls while
// the store fails.
const (
	storeBackoffMin = 100 * time.Millisecond
	storeBackoffMax = 5 * time.Second
	// storeCallTimeout bounds one store call made outside Run's context
	// (recording during a drain must not hang on a dead store forever).
	storeCallTimeout = store.CallTimeout
)

// dispatcher leases one destination's due deliveries and runs each on a
// worker goroutine, never more attempts at once than the destination's
// concurrency, and leases nothing while its circuit is open.
type dispatcher struct {
	*Pipeline // the destination's settings, breaker, rate limit and settling
	wake      chan struct{}
	// kick tells run that it may lease again (kickIfLeasable): a worker
	// freed its slot or an outcome was written. Workers never block on it
	// (it holds one pending signal), even after run returned.
	kick chan struct{}
	// jobs hands deliveries to idle workers; unbuffered, so a delivery
	// never waits for a worker that is still busy.
	jobs chan job
	// slots admits at most the destination's concurrency of attempts.
	slots *gate
	busy  atomic.Int32 // deliveries handed to workers whose attempt has not ended
	held  atomic.Int32 // deliveries leased whose outcome is not written yet
	keep  keeper       // extends handed-out leases, times attempts out

	cancel context.CancelFunc // stops run; guarded by Manager.mu
}

func newDispatcher(pl *Pipeline) *dispatcher {
	p := pl.profile()
	dp := &dispatcher{
		Pipeline: pl,
		wake:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		jobs:     make(chan job),
		slots:    newGate(p.set.concurrency),
	}
	dp.keep.dp = dp
	return dp
}

// apply switches to a new profile (a config reload). Attempts in flight
// keep the old one; its idle connections are closed.
func (dp *dispatcher) apply(p *profile) {
	old := dp.Pipeline.apply(p)
	for _, j := range dp.slots.setLimit(p.set.concurrency) {
		dp.launch(j)
	}
	old.ep.client.HTTPClient.CloseIdleConnections()
	old.ep.hops.closeIdle()
	dp.kickRun() // concurrency may have grown
	dp.log.Info("deliver: destination settings changed", "url", p.ep.redacted, "concurrency", p.set.concurrency)
}

// stop ends run (the destination was removed); attempts in flight finish.
// Manager.mu is held.
func (dp *dispatcher) stop() {
	if dp.cancel != nil {
		dp.cancel()
	}
	dp.profile().ep.client.HTTPClient.CloseIdleConnections()
	dp.profile().ep.hops.closeIdle()
	dp.log.Info("deliver: destination removed; its queued deliveries stay in the store")
}

func (dp *dispatcher) kickRun() {
	select {
	case dp.kick <- struct{}{}:
	default:
	}
}

// leasable is how many deliveries run may lease now: no more than the
// workers may hold (see leaseAhead), nor more than may wait for their
// outcome to be written; and while every slot has a delivery, none until a
// batch can be leased, since leasing one delivery per freed slot costs a
// store call each. 0 means wait.
func (dp *dispatcher) leasable(c int) int {
	busy := int(dp.busy.Load())
	n := min(leaseAhead(c)-busy, heldLimit(c)-int(dp.held.Load()))
	if n <= 0 || (busy >= c && n < leaseBatch(c)) {
		return 0
	}
	return n
}

// kickIfLeasable wakes run after a worker freed a slot or an outcome was
// written, but only if run would lease now: waking it to find that it must
// go on waiting cost a goroutine switch for most deliveries.
func (dp *dispatcher) kickIfLeasable() {
	if dp.leasable(dp.profile().set.concurrency) > 0 {
		dp.kickRun()
	}
}

// run leases and hands out work until ctx ends. Workers run under hard.
func (dp *dispatcher) run(ctx, hard context.Context, workers *sync.WaitGroup) {
	dp.log.Debug("deliver: dispatcher started", "url", dp.profile().ep.redacted)
	var backoff time.Duration
	for {
		p := dp.profile()
		n := dp.leasable(p.set.concurrency)
		if n == 0 {
			if !dp.pause(ctx, 0) {
				return
			}
			continue
		}
		adm, wait, tr := dp.cb.br.admit(dp.opts.Clock.Now())
		dp.cb.notify(tr)
		if adm == admitNone {
			if !dp.pause(ctx, wait) {
				return
			}
			continue
		}
		probe := adm == admitProbe
		if probe {
			n = 1
		}
		if !dp.yield(ctx) {
			return
		}
		batch, err := dp.q.Lease(ctx, dp.name, n, p.lease)
		if probe && len(batch) == 0 {
			dp.cb.ProbeUnused()
		}
		if ctx.Err() != nil {
			// Deliveries leased as the context ended still get a worker,
			// which releases them at once.
			dp.start(ctx, hard, p, batch, probe, workers)
			return
		}
		if err != nil {
			if backoff == 0 {
				dp.log.Error("deliver: lease failed; retrying with backoff until the store answers", "error", err)
			}
			backoff = nextBackoff(backoff)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		if backoff != 0 {
			dp.log.Info("deliver: store answers again")
			backoff = 0
		}
		dp.start(ctx, hard, p, batch, probe, workers)
		if len(batch) == n {
			continue // a full batch: more may be due
		}
		if !dp.idle(ctx) {
			return
		}
	}
}

// workerIdle is how long a worker goroutine waits for its next delivery
// before it exits.
const workerIdle = time.Second

// job is one leased delivery for a worker.
type job struct {
	ctx, hard context.Context
	p         *profile
	d         store.Delivery
	probe     bool
	ext       *extender // keeps d's lease alive from the moment it was taken
	// workers counts what Run waits for; an outcome written after its
	// worker moved on is part of it.
	workers *sync.WaitGroup
}

// start starts each delivery that finds a free attempt slot and queues the
// rest in the gate, where a worker whose attempt ends takes them.
func (dp *dispatcher) start(ctx, hard context.Context, p *profile, batch []store.Delivery, probe bool, workers *sync.WaitGroup) {
	leased := dp.opts.Clock.Now() // one reading serves the batch
	for i, d := range batch {
		dp.busy.Add(1)
		dp.held.Add(1)
		j := job{ctx: ctx, hard: hard, p: p, d: d, probe: probe && i == 0, ext: dp.extend(hard, p, d, leased), workers: workers}
		if dp.slots.enter(j) {
			dp.launch(j)
		}
	}
}

// launch runs j, which holds an attempt slot, on an idle worker, or on a
// new one when none waits. Reusing workers saves a goroutine and the growth
// of its stack (an attempt runs deep into net/http) per delivery.
func (dp *dispatcher) launch(j job) {
	select {
	case dp.jobs <- j:
	default:
		j.workers.Go(func() { dp.worker(j) })
	}
}

// worker runs j, then the queued jobs its slot passes to it, then any job
// launched while it idles, until it has idled for workerIdle or the
// dispatcher's context ends.
func (dp *dispatcher) worker(j job) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	var actx attemptCtx
	defer actx.end()
	for ok := true; ok; {
		if next, passed := dp.work(j, &actx); passed {
			j = next
			continue
		}
		j, ok = dp.next(j.ctx, idle)
	}
}

// attemptCtx is the context a worker's attempts run under. It lasts from
// one attempt to the next until the keeper cancels it (the attempt timed
// out) or its parent ends: a context per attempt, registered with the
// parent that every worker shares, cost about 1 µs of CPU per delivery in
// a profile of the backlog benchmark.
type attemptCtx struct {
	parent, ctx context.Context
	cancel      context.CancelFunc
	// detached is from without its cancelation, for the outcomes handed to
	// the store: made once, not once per delivery.
	from, detached context.Context
}

// detach returns hard without its cancelation.
func (a *attemptCtx) detach(hard context.Context) context.Context {
	if a.from != hard {
		a.from, a.detached = hard, context.WithoutCancel(hard)
	}
	return a.detached
}

// get returns a live context under hard, made anew when the last one was
// canceled.
func (a *attemptCtx) get(hard context.Context) (context.Context, context.CancelFunc) {
	if a.ctx == nil || a.parent != hard || a.ctx.Err() != nil {
		a.end()
		a.parent = hard
		a.ctx, a.cancel = context.WithCancel(hard)
	}
	return a.ctx, a.cancel
}

func (a *attemptCtx) end() {
	if a.cancel != nil {
		a.cancel()
	}
}

// next waits for a job; false once the worker has idled for workerIdle or
// ctx ended. The idle timer is not reset per job but checked when it fires,
// for the reason the keeper has one timer.
func (dp *dispatcher) next(ctx context.Context, idle *time.Timer) (job, bool) {
	since := time.Now()
	for {
		select {
		case j := <-dp.jobs:
			return j, true
		case <-idle.C:
			rest := workerIdle - time.Since(since)
			if rest <= 0 {
				return job{}, false
			}
			idle.Reset(rest)
		case <-ctx.Done():
			return job{}, false
		}
	}
}

// pause waits until a worker reports, a Wake, d (if positive) passes on
// Options.Clock (a circuit's cooldown), or ctx ends (false).
func (dp *dispatcher) pause(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		t := dp.opts.Clock.AfterFunc(d, dp.kickRun)
		defer t.Stop()
	}
	select {
	case <-dp.kick:
	case <-dp.wake:
	case <-ctx.Done():
		return false
	}
	return true
}

// yield waits while Options.Yield says ingest is backed up, in steps of
// yieldStep and for at most yieldFor, so that a dispatcher under sustained
// load still leases at least once per yieldFor. False when ctx ended.
func (dp *dispatcher) yield(ctx context.Context) bool {
	if dp.opts.Yield == nil {
		return true
	}
	var waited time.Duration
	defer func() {
		if waited > 0 && dp.opts.OnYield != nil {
			dp.opts.OnYield(dp.name, waited)
		}
	}()
	for start := time.Now(); waited < yieldFor && dp.opts.Yield(); waited = time.Since(start) {
		if !sleep(ctx, yieldStep) {
			return false
		}
	}
	return true
}

// idle waits for a Wake or the poll interval; false when ctx ended.
func (dp *dispatcher) idle(ctx context.Context) bool {
	t := time.NewTimer(dp.opts.PollInterval)
	defer t.Stop()
	select {
	case <-dp.wake:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// sleep waits for d; false when ctx ended. Wakes are left pending: the
// store is failing, and more calls would not help.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextBackoff doubles b within [storeBackoffMin, storeBackoffMax].
func nextBackoff(b time.Duration) time.Duration {
	return min(max(2*b, storeBackoffMin), storeBackoffMax)
}

// work makes one attempt of j's delivery, which holds an attempt slot, and
// records its outcome. A delivery that cannot be attempted now (Relay is
// shutting down, the destination was removed, or its circuit opened after
// the lease) is released, due now, with no attempt counted. The slot is
// passed on as soon as the attempt is classified: to the next queued job,
// which work returns for its worker to run next (passed) while the store
// writes this outcome.
func (dp *dispatcher) work(j job, actx *attemptCtx) (next job, passed bool) {
	ctx, hard, p, d, probe, ext := j.ctx, j.hard, j.p, j.d, j.probe, j.ext
	handed, slot := true, true
	freeSlot := func() {
		if slot {
			slot = false
			if nj, ok := dp.slots.pass(); ok {
				next, passed = nj, true
			}
		}
		if handed {
			handed = false
			dp.busy.Add(-1)
			dp.kickIfLeasable()
		}
	}
	recording := false // the outcome is being written without this worker
	defer func() {
		freeSlot()
		if !recording {
			dp.unhold()
		}
	}()
	defer ext.stop()

	if !dp.ready(ctx, p, probe) {
		dp.giveBack(d, probe)
		return
	}
	var res result
	start := time.Now()
	if d.Event == nil {
		res = result{err: fmt.Errorf("%w (event %s)", ErrNoEvent, d.EventID)}
	} else {
		res = dp.attempt(hard, actx, p, d, ext, start)
		if res.err != nil && hard.Err() != nil {
			// The drain ran out mid-attempt: not the receiver's failure.
			dp.giveBack(d, probe)
			return
		}
	}
	// The one settle path an agent's report takes too (Pipeline.Settle),
	// with the slot freed before the write.
	s := dp.judge(p, d, res, probe, dp.opts.at(start.Add(res.took)))
	freeSlot()
	// The store refuses extensions while it commits an outcome, so stop
	// extending first; the lease has at least two thirds of its time left.
	ext.stop()
	d.Event = nil // the body is not needed any more; let it go
	w := &outcomeWrite{dp: dp, hard: hard, ext: ext, workers: j.workers, s: s.Settlement, d: d}
	recording = true
	j.workers.Add(1)
	// Without waiting: the worker goes on to its next delivery, and the
	// store's goroutine answers w.done without waking anyone.
	dp.q.Settle(actx.detach(hard), d, s.Settlement, w.done)
	return next, passed
}

// outcomeWrite is one attempt's outcome on its way to the store. It is one
// allocation where closures over the job and the delivery were four.
type outcomeWrite struct {
	dp      *dispatcher
	hard    context.Context
	ext     *extender
	workers *sync.WaitGroup
	s       store.Settlement
	d       store.Delivery
}

func (w *outcomeWrite) write(ctx context.Context) error {
	return store.SettleWait(ctx, w.dp.q, w.d, w.s)
}

// done is the store's answer to Settle; it runs on the store's goroutine.
func (w *outcomeWrite) done(err error) {
	if w.dp.recorded(w.d, err, false) {
		w.dp.unhold()
		w.workers.Done()
		return
	}
	// The store failed: retry as record does, on a goroutine of its own.
	go func() {
		defer w.workers.Done()
		defer w.dp.unhold()
		w.dp.record(w.hard, w.ext, w.d, w.write, err)
	}()
}

// attempt makes one attempt of d under actx, which the keeper cancels at
// the destination's timeout (ext.bound) and the end of hard cancels too.
// start is when it began, by the real clock.
func (dp *dispatcher) attempt(hard context.Context, actx *attemptCtx, p *profile, d store.Delivery, ext *extender, start time.Time) result {
	ctx, cancel := actx.get(hard)
	now := dp.opts.at(start)
	if p.ep.timeout > 0 {
		ext.bound(now.Add(p.ep.timeout), cancel)
		// Once unbound, the keeper can no longer cancel ctx for this
		// attempt, so the next one may use it if it is still live.
		defer ext.unbound()
	}
	return p.ep.do(hard, ctx, d, start, now)
}

// unhold ends a delivery's hold once its outcome is written or given up.
func (dp *dispatcher) unhold() {
	dp.held.Add(-1)
	dp.kickIfLeasable()
}

// ready waits for the rate limit and reports whether d may be attempted:
// false once ctx ended or while the circuit is open (unless d is the probe).
func (dp *dispatcher) ready(ctx context.Context, p *profile, probe bool) bool {
	if p.set.rateLimit > 0 {
		if err := dp.limiter.Wait(ctx); err != nil {
			return false
		}
	}
	return ctx.Err() == nil && dp.cb.br.allows(probe)
}

// giveBack releases d unattempted, and the probe's turn with it.
func (dp *dispatcher) giveBack(d store.Delivery, probe bool) {
	if probe {
		dp.cb.ProbeUnused()
	}
	dp.release(d)
}

// logFor is the logger for messages about one delivery. It is built only
// when there is something to say: With formats eagerly.
func (dp *dispatcher) logFor(d store.Delivery) *slog.Logger {
	return dp.log.With("delivery", d.ID, "attempt", d.Attempts+1)
}

// record runs one outcome write, retrying while the store fails and the
// lease still holds. A lost lease means another worker owns the delivery now;
// giving up otherwise is safe because the lease expires and the delivery is
// attempted again (at-least-once), and it is logged as an error. failed is
// the error of a first write already made (by Settle), or nil.
func (dp *dispatcher) record(hard context.Context, ext *extender, d store.Delivery, write func(context.Context) error, failed error) {
	var backoff time.Duration
	err := failed
	for {
		if err == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(hard), storeCallTimeout)
			err = write(ctx)
			cancel()
		}
		if dp.recorded(d, err, backoff != 0) {
			return
		}
		backoff = nextBackoff(backoff)
		if hard.Err() != nil || dp.opts.Clock.Now().Add(backoff).After(ext.expires()) {
			dp.logFor(d).Error("deliver: outcome not recorded; the delivery will be attempted again when its lease expires", "store_error", err)
			return
		}
		if backoff == storeBackoffMin {
			dp.logFor(d).Warn("deliver: recording outcome failed; retrying", "store_error", err)
		}
		select {
		case <-time.After(backoff):
		case <-hard.Done():
		}
		err = nil
	}
}

// recorded reports whether an outcome write that returned err is over:
// written, or refused because the lease is lost (logged). retried says it
// was not the first try.
func (dp *dispatcher) recorded(d store.Delivery, err error, retried bool) bool {
	switch {
	case err == nil:
		if retried {
			dp.logFor(d).Info("deliver: outcome recorded after store recovered")
		}
		return true
	case errors.Is(err, store.ErrLeaseLost):
		dp.logFor(d).Warn("deliver: lease lost before the outcome was recorded; another worker owns the delivery", "store_error", err)
		return true
	}
	return false
}

// release gives d back, due now, without recording an attempt.
func (dp *dispatcher) release(d store.Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if err := dp.q.Release(ctx, d, dp.opts.Clock.Now()); err != nil {
		dp.logFor(d).Warn("deliver: release failed; the delivery is due again when its lease expires", "store_error", err)
		return
	}
	dp.log.Debug("deliver: released", "delivery", d.ID)
}
