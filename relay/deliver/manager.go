package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// Queue is the part of store.Store that delivery uses.
type Queue interface {
	Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error)
	ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error
	Release(ctx context.Context, d store.Delivery, due time.Time) error
	Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error))
}

var _ Queue = store.Store(nil)

// Options tunes a Manager. The zero value is usable.
type Options struct {
	// Logger receives one line per state change; default slog.Default().
	Logger *slog.Logger
	// PollInterval is how often an idle dispatcher looks for due deliveries
	// that no Wake announced (retries coming due); default
	// config.DefaultPollInterval.
	PollInterval time.Duration
	// DrainTimeout is how long in-flight attempts may run after Run's context
	// ends; attempts still running then are cancelled and their deliveries
	// released, due at once. Default config.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// OnAttempt, if set, is called after every attempt (for metrics).
	OnAttempt func(dest string, outcome Outcome, status int, took time.Duration)
	// OnResult, if set, is called after every attempt with the delivery
	// and the attempt as recorded (for the admin API's live tail). It must
	// not block.
	OnResult func(d store.Delivery, a store.Attempt, outcome Outcome)
	// OnCircuit, if set, is called when a destination's circuit changes
	// state (CircuitClosed, CircuitOpen, CircuitHalfOpen), for metrics. It
	// is called without locks held, one call at a time per destination, and
	// a late report of an older state is skipped rather than delivered
	// after a newer one.
	OnCircuit func(dest string, state string)
	// Clock is the dispatchers' time: due times, signatures, circuit
	// cooldowns, lease extensions and attempt timeouts. Default clock.Real.
	Clock clock.Clock
	// Version goes into the User-Agent, "relay/<Version>"; default "dev".
	Version string
	// CheckRetry decides which failures are retried; default
	// DefaultCheckRetry. It is given a context that outlives the attempt.
	CheckRetry retryablehttp.CheckRetry
	// Backoff picks the wait before the next attempt, attemptNum 0 after
	// the first; default DefaultBackoff. retry.schedule overrides it.
	Backoff retryablehttp.Backoff
	// LeaseMargin is added to a destination's timeout to get the lease
	// duration when Lease is zero; default config.DefaultLeaseMargin.
	LeaseMargin time.Duration
	// OwnAddrs are the relay's own listeners: a followed redirect never
	// leads to one of them, whatever the destination (guard.go).
	OwnAddrs []net.Addr
	// Lease, when set, is the lease of every delivery whatever its
	// destination's timeout. Workers extend it every third of it while the
	// delivery waits or is attempted, so it bounds how soon another process
	// takes over the work of one that died, not how long an attempt takes.
	Lease time.Duration
	// LogSample, when set, decides whether a delivered delivery gets its
	// info line (log.sample); nil logs every one. Failures always do.
	LogSample func() bool

	// Yield, when set, reports that ingest is backed up: a dispatcher then
	// holds its next Lease, up to yieldFor, so the CPU and the store serve
	// providers first. Deliveries are late by the wait, never lost.
	Yield func() bool
	// OnYield, if set, is called with the time a dispatcher of dest waited
	// because Yield said so (for metrics).
	OnYield func(dest string, waited time.Duration)

	// guard is built from OwnAddrs by withDefaults.
	guard *dialGuard
}

// at is the time Clock would give at the moment the real clock read t: t
// itself when Clock is the real clock, which spares a delivery clock
// readings it does not need.
func (o *Options) at(t time.Time) time.Time {
	if o.Clock == clock.Real {
		return t
	}
	return o.Clock.Now()
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = config.DefaultPollInterval
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = config.DefaultDrainTimeout
	}
	o.Clock = clock.Or(o.Clock)
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.CheckRetry == nil {
		o.CheckRetry = DefaultCheckRetry
	}
	// An agent's transport errors arrive as text, with its verdict.
	o.CheckRetry = trustReported(o.CheckRetry)
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.LeaseMargin <= 0 {
		o.LeaseMargin = config.DefaultLeaseMargin
	}
	if o.guard == nil {
		o.guard = newDialGuard(o.OwnAddrs)
	}
	return o
}

// Manager keeps one Pipeline per destination and runs a dispatcher for each
// direct one, with its own pool of workers, its own HTTP client, its own
// circuit breaker and its own leasing, so a destination that hangs holds
// only its own workers. An agent destination's Pipeline serves the agent
// server (Pipeline).
type Manager struct {
	q    Queue
	opts Options
	set  atomic.Pointer[destSet] // read by Wake and States without locking

	mu  sync.Mutex // serialises Update against Run's start and end
	run *runState  // set while Run runs
}

// destSet is one version of the destination list.
type destSet struct {
	all    []config.Destination   // in config order, agent destinations too
	pipes  map[string]*Pipeline   // every destination
	byName map[string]*dispatcher // direct destinations
}

// runState is what Update needs to start a dispatcher while Run runs.
type runState struct {
	ctx, hard            context.Context
	workers, dispatchers *sync.WaitGroup
}

// NewManager compiles dests for delivery. Destinations served by an agent
// (Agent != "") get a Pipeline but no dispatcher: the agent server leases
// their deliveries. It fails on a destination that cannot be sent to (bad
// URL, bad secret, unreadable CA file, duplicate name).
func NewManager(q Queue, dests []config.Destination, opts Options) (*Manager, error) {
	m := &Manager{q: q, opts: opts.withDefaults()}
	m.set.Store(&destSet{pipes: map[string]*Pipeline{}, byName: map[string]*dispatcher{}})
	if err := m.Update(dests); err != nil {
		return nil, err
	}
	return m, nil
}

// Update swaps the destination set, for a config reload. New destinations
// start; removed ones stop leasing (their queued deliveries stay in the
// store, and attempts in flight finish and are recorded); changed ones apply
// their new settings from their next attempt on, keeping their circuit
// state, while attempts in flight finish with the settings they started
// with. On an error (see NewManager) nothing changes. It may be called
// before, during or after Run.
func (m *Manager) Update(dests []config.Destination) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.set.Load()
	next := &destSet{all: dests, pipes: map[string]*Pipeline{}, byName: map[string]*dispatcher{}}
	type change struct {
		pl *Pipeline
		p  *profile
	}
	var changes []change
	var added []*dispatcher
	seen := map[string]bool{}
	for _, d := range dests {
		if seen[d.Name] || d.Name == "" {
			return fmt.Errorf("%w %q: missing or duplicate name", ErrBadDestination, d.Name)
		}
		seen[d.Name] = true
		pl := old.pipes[d.Name]
		switch {
		case pl == nil || pl.agent != d.Agent:
			// New, or moved to or from an agent: a new pipeline.
			var err error
			if pl, err = newPipeline(m.q, d, &m.opts); err != nil {
				return err
			}
			if d.Agent == "" {
				added = append(added, newDispatcher(pl))
			}
		case !pl.profile().cfg.Same(d):
			p, err := newProfile(d, &m.opts)
			if err != nil {
				return err
			}
			changes = append(changes, change{pl, p})
		}
		next.pipes[d.Name] = pl
		if d.Agent == "" {
			if dp := old.byName[d.Name]; dp != nil && dp.Pipeline == pl {
				next.byName[d.Name] = dp
			}
		}
	}
	for _, dp := range added {
		next.byName[dp.name] = dp
	}
	for _, c := range changes {
		if dp := next.byName[c.pl.name]; dp != nil {
			dp.apply(c.p)
		} else {
			c.pl.apply(c.p)
		}
	}
	for name, dp := range old.byName {
		if next.byName[name] != dp {
			dp.stop()
		}
	}
	m.set.Store(next)
	if m.run != nil {
		for _, dp := range added {
			m.startLocked(dp)
		}
	}
	if len(changes)+len(added) > 0 || len(next.byName) != len(old.byName) {
		m.opts.Logger.Info("deliver: destinations updated", "destinations", len(next.byName), "added", len(added), "changed", len(changes))
	}
	return nil
}

// Pipeline returns dest's pipeline, or nil when dest is not configured.
func (m *Manager) Pipeline(dest string) *Pipeline {
	return m.set.Load().pipes[dest]
}

// startLocked runs dp's dispatcher under Run; m.mu is held and m.run set.
func (m *Manager) startLocked(dp *dispatcher) {
	ctx, cancel := context.WithCancel(m.run.ctx)
	dp.cancel = cancel
	r := m.run
	r.dispatchers.Go(func() { dp.run(ctx, r.hard, r.workers) })
}

// Run dispatches until ctx ends, then stops leasing, lets in-flight attempts
// finish for up to DrainTimeout, releases the deliveries still held (due
// now, so the next process takes them at once), waits for outcomes to be
// written and returns nil. Call it once.
func (m *Manager) Run(ctx context.Context) error {
	// hard outlives ctx by DrainTimeout: attempts and their recording run
	// under it, so a shutdown does not cut an attempt that is about to answer.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(m.opts.DrainTimeout, cancelHard)
		context.AfterFunc(hard, func() { t.Stop() })
	})
	defer stopDrainTimer()

	var workers, dispatchers sync.WaitGroup
	m.mu.Lock()
	m.run = &runState{ctx: ctx, hard: hard, workers: &workers, dispatchers: &dispatchers}
	set := m.set.Load()
	for _, d := range set.all {
		if dp := set.byName[d.Name]; dp != nil {
			m.startLocked(dp)
		}
	}
	m.mu.Unlock()
	m.opts.Logger.Info("deliver: started", "destinations", len(set.byName))

	<-ctx.Done()
	m.mu.Lock()
	m.run = nil // Update starts no dispatcher from now on
	m.mu.Unlock()
	dispatchers.Wait()
	// Every dispatcher has returned, so no worker is added after this.
	workers.Wait()
	m.opts.Logger.Info("deliver: stopped")
	return nil
}

// Wake tells dest's dispatcher that a delivery is due now, so it leases at
// once instead of at its next poll. It never blocks; unknown and agent
// destinations are ignored.
func (m *Manager) Wake(dest string) {
	if dp, ok := m.set.Load().byName[dest]; ok {
		select {
		case dp.wake <- struct{}{}:
		default: // a wake-up is already pending; one is enough
		}
	}
}

// Replayed tells dest's workers that an operator replayed deliveries of it:
// they are due now, and an open circuit sends the first at once as its
// probe instead of waiting out the cooldown.
func (m *Manager) Replayed(dest string) {
	if dp, ok := m.set.Load().byName[dest]; ok {
		dp.cb.ProbeNow(m.opts.Clock.Now()) // the clock run admits by
	}
	m.Wake(dest)
}

// States returns a snapshot of every destination, in config order: its
// circuit and last results, and the attempts in flight of a direct one.
func (m *Manager) States() []state.Destination {
	set := m.set.Load()
	out := make([]state.Destination, 0, len(set.all))
	for _, d := range set.all {
		st := set.pipes[d.Name].State()
		if dp := set.byName[d.Name]; dp != nil {
			st.InFlight = dp.slots.inUse()
		}
		out = append(out, st)
	}
	return out
}
