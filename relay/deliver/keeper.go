package deliver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// extender keeps one handed-out delivery's lease alive while its worker
// waits (rate limit, attempt slot) or attempts, and tracks when the lease
// runs out. Its dispatcher's keeper extends it every lease/3, and ends its
// attempt at the destination's timeout (bound).
type extender struct {
	until atomic.Int64 // unix nanoseconds of the lease's expiry

	// mu is held while an extension runs, so stop returns only when none
	// does and none will.
	mu      sync.Mutex
	stopped bool
	failing bool

	// Guarded by keeper.mu.
	next       time.Time          // when the next extension is due
	extending  bool               // an extension is running or lost
	deadline   time.Time          // when the attempt under way times out; zero if none
	cut        context.CancelFunc // ends the attempt under way
	prev, succ *extender          // the keeper's list

	k     *keeper
	hard  context.Context
	d     store.Delivery
	lease time.Duration
}

// keeper extends the leases of one dispatcher's handed-out deliveries and
// times their attempts out, with one timer armed for the earliest of those
// that is due, re-armed only when it fires: almost every attempt ends long
// before either, and a timer per delivery cost measurable CPU
// (docs/benchmarks.md, "Why the tuned constants are what they are").
type keeper struct {
	dp *dispatcher // its Options.Clock is the keeper's, which tests drive

	// extensions counts the extensions under way, so a test can wait for
	// the ones a tick started.
	extensions sync.WaitGroup

	mu    sync.Mutex
	head  *extender // the list of live extenders, newest first
	timer clock.Timer
	armed time.Time // when timer fires; zero when it is not armed
}

// extend starts keeping d's lease, taken for p.lease just before Clock
// read leased.
func (dp *dispatcher) extend(hard context.Context, p *profile, d store.Delivery, leased time.Time) *extender {
	e := &extender{k: &dp.keep, hard: hard, d: d, lease: p.lease, next: leased.Add(p.lease / 3)}
	e.until.Store(leased.Add(p.lease).UnixNano())
	dp.keep.add(e)
	return e
}

func (k *keeper) add(e *extender) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.succ = k.head
	if k.head != nil {
		k.head.prev = e
	}
	k.head = e
	k.armLocked(e.next)
}

// listedLocked reports whether e is in k's list; k.mu is held.
func (k *keeper) listedLocked(e *extender) bool { return e.prev != nil || k.head == e }

// remove unlinks e; it may be called more than once.
func (k *keeper) remove(e *extender) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.listedLocked(e) {
		return
	}
	if e.prev != nil {
		e.prev.succ = e.succ
	} else {
		k.head = e.succ
	}
	if e.succ != nil {
		e.succ.prev = e.prev
	}
	e.prev, e.succ = nil, nil
}

// armLocked makes the timer fire by at. An armed timer that fires sooner
// is left alone: the tick arms it again for the earliest extension due.
func (k *keeper) armLocked(at time.Time) {
	if !k.armed.IsZero() && !at.Before(k.armed) {
		return
	}
	k.armed = at
	d := at.Sub(k.dp.opts.Clock.Now())
	if k.timer == nil {
		k.timer = k.dp.opts.Clock.AfterFunc(d, k.tick)
		return
	}
	k.timer.Reset(d)
}

// tick times out the attempts whose deadline passed and starts the
// extensions that are due, each on a goroutine of its own (a store that
// hangs must not hold up the other leases), and arms the timer for the next.
func (k *keeper) tick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.armed = time.Time{}
	now := k.dp.opts.Clock.Now()
	var earliest time.Time
	sooner := func(t time.Time) {
		if earliest.IsZero() || t.Before(earliest) {
			earliest = t
		}
	}
	for e := k.head; e != nil; e = e.succ {
		if !e.deadline.IsZero() {
			if now.Before(e.deadline) {
				sooner(e.deadline)
			} else {
				e.cut()
				e.deadline, e.cut = time.Time{}, nil
			}
		}
		switch {
		case e.extending:
		case !now.Before(e.next):
			e.extending = true
			k.extensions.Add(1)
			go func() {
				defer k.extensions.Done()
				e.extendOnce()
			}()
		default:
			sooner(e.next)
		}
	}
	if !earliest.IsZero() {
		k.armLocked(earliest)
	}
}

// bound has the keeper call cut at deadline unless the extender stopped
// first: the attempt's timeout.
func (e *extender) bound(deadline time.Time, cut context.CancelFunc) {
	e.k.mu.Lock()
	defer e.k.mu.Unlock()
	e.deadline, e.cut = deadline, cut
	e.k.armLocked(deadline)
}

// unbound ends bound's watch: the attempt is over.
func (e *extender) unbound() {
	e.k.mu.Lock()
	defer e.k.mu.Unlock()
	e.deadline, e.cut = time.Time{}, nil
}

// extendOnce extends the lease and schedules the next extension, unless
// the extender stopped, hard ended or the lease is lost.
func (e *extender) extendOnce() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || e.hard.Err() != nil {
		return
	}
	dp := e.k.dp
	ctx, cancel := context.WithTimeout(e.hard, e.lease/3)
	at := dp.opts.Clock.Now()
	err := dp.q.ExtendLease(ctx, e.d, e.lease)
	cancel()
	switch {
	case err == nil:
		e.until.Store(at.Add(e.lease).UnixNano())
		e.failing = false
	case errors.Is(err, store.ErrLeaseLost):
		dp.logFor(e.d).Warn("deliver: lease lost during the attempt", "store_error", err)
		return // extending stays set: no more tries
	case !e.failing:
		e.failing = true
		dp.logFor(e.d).Warn("deliver: extending lease failed; will try again", "store_error", err)
	}
	e.k.mu.Lock()
	defer e.k.mu.Unlock()
	e.extending = false
	e.next = e.k.dp.opts.Clock.Now().Add(e.lease / 3)
	if e.k.listedLocked(e) {
		e.k.armLocked(e.next)
	}
}

func (e *extender) expires() time.Time { return time.Unix(0, e.until.Load()) }

// stop ends the extensions, waiting for one under way; it may be called
// more than once.
func (e *extender) stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.k.remove(e)
}
