package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// Queue is the part of store.Store that delivery uses.
type Queue interface {
	Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error)
	ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error
	Release(ctx context.Context, d store.Delivery, due time.Time) error
	Complete(ctx context.Context, d store.Delivery, a store.Attempt) error
	Retry(ctx context.Context, d store.Delivery, a store.Attempt, due time.Time) error
	DeadLetter(ctx context.Context, d store.Delivery, a store.Attempt) error
}

var _ Queue = store.Store(nil)

// Defaults for Options. Destination fields left zero (a Config built by hand
// without SetDefaults) take config's defaults, so a zero never means "no
// timeout" or "retry forever".
const (
	DefaultDrainTimeout = 10 * time.Second
	DefaultLeaseMargin  = 30 * time.Second
)

// Options tunes a Manager. The zero value is usable.
type Options struct {
	// Logger receives one line per state change; default slog.Default().
	Logger *slog.Logger
	// PollInterval is how often an idle dispatcher looks for due deliveries
	// that no Wake announced (retries coming due); default 500ms.
	PollInterval time.Duration
	// DrainTimeout is how long in-flight attempts may run after Run's context
	// ends; attempts still running then are cancelled and their deliveries
	// released, due at once. Default 10s.
	DrainTimeout time.Duration
	// OnAttempt, if set, is called after every attempt (for metrics).
	OnAttempt func(dest string, outcome Outcome, status int, took time.Duration)
	// Now is the clock for due times and signatures; default time.Now.
	Now func() time.Time
	// Version goes into the User-Agent, "relay/<Version>"; default "dev".
	Version string
	// CheckRetry decides which failures are retried; default DefaultCheckRetry.
	CheckRetry CheckRetry
	// Backoff picks the wait before the next attempt; default DefaultBackoff.
	Backoff Backoff
	// LeaseMargin is added to a destination's timeout to get the lease
	// duration; default 30s.
	LeaseMargin time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = config.DefaultPollInterval
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.CheckRetry == nil {
		o.CheckRetry = DefaultCheckRetry
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.LeaseMargin <= 0 {
		o.LeaseMargin = DefaultLeaseMargin
	}
	return o
}

// Manager runs one dispatcher per destination, each with its own pool of
// workers, its own HTTP client and its own leasing, so a destination that
// hangs holds only its own workers.
type Manager struct {
	q     Queue
	opts  Options
	dests map[string]*dispatcher
	order []*dispatcher
}

// NewManager compiles dests for delivery. Destinations served by an agent
// (Agent != "") are skipped: their deliveries are leased by the agent server.
// It fails on a destination that cannot be sent to (bad URL, bad secret,
// duplicate name).
func NewManager(q Queue, dests []config.Destination, opts Options) (*Manager, error) {
	opts = opts.withDefaults()
	m := &Manager{q: q, opts: opts, dests: make(map[string]*dispatcher)}
	for _, d := range dests {
		if d.Agent != "" {
			continue
		}
		if _, dup := m.dests[d.Name]; dup || d.Name == "" {
			return nil, fmt.Errorf("%w %q: missing or duplicate name", ErrBadDestination, d.Name)
		}
		dp, err := newDispatcher(q, d, &m.opts)
		if err != nil {
			return nil, err
		}
		m.dests[d.Name] = dp
		m.order = append(m.order, dp)
	}
	return m, nil
}

// Run dispatches until ctx ends, then stops leasing, lets in-flight attempts
// finish for up to DrainTimeout, releases the deliveries still held (due
// now, so the next process takes them at once) and returns nil. Call it once.
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
	for _, dp := range m.order {
		dispatchers.Go(func() { dp.run(ctx, hard, &workers) })
	}
	m.opts.Logger.Info("deliver: started", "destinations", len(m.order))
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
	if dp, ok := m.dests[dest]; ok {
		select {
		case dp.wake <- struct{}{}:
		default: // a wake-up is already pending; one is enough
		}
	}
}

// destSettings are a destination's numbers with defaults applied.
type destSettings struct {
	timeout     time.Duration
	concurrency int
	maxAttempts int
	initial     time.Duration
	maxInterval time.Duration
	maxAge      time.Duration
	success     map[int]bool // nil means any 2xx
	limiter     *rate.Limiter
}

func settingsFor(d config.Destination) destSettings {
	s := destSettings{
		timeout:     orDefault(d.Timeout.D(), config.DefaultTimeout),
		concurrency: d.Concurrency,
		maxAttempts: d.Retry.MaxAttempts,
		initial:     orDefault(d.Retry.InitialInterval.D(), config.DefaultInitialInterval),
		maxInterval: orDefault(d.Retry.MaxInterval.D(), config.DefaultMaxInterval),
		maxAge:      orDefault(d.Retry.MaxAge.D(), config.DefaultMaxAge),
	}
	if s.concurrency <= 0 {
		s.concurrency = config.DefaultConcurrency
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = config.DefaultMaxAttempts
	}
	if len(d.SuccessStatus) > 0 {
		s.success = make(map[int]bool, len(d.SuccessStatus))
		for _, c := range d.SuccessStatus {
			s.success[c] = true
		}
	}
	if d.RateLimit > 0 {
		// A burst of one spreads deliveries evenly instead of letting a
		// backlog out in a rush after an outage.
		s.limiter = rate.NewLimiter(rate.Limit(d.RateLimit), 1)
	}
	return s
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
