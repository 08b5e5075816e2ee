package deliver

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// TestBreakerSequences drives the breaker through sequences of events and
// checks its state after each.
func TestBreakerSequences(t *testing.T) {
	cfg := breakerConfig{failures: 3, first: time.Minute, cooldown: time.Minute}
	// growing starts at 5s and doubles up to 40s.
	growing := breakerConfig{failures: 1, first: 5 * time.Second, cooldown: 40 * time.Second}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		do   string // "ok", "fail", "probe-ok", "probe-fail", "admit", "unused", "probe-now"
		at   time.Duration
		want string    // state after the step
		adm  admission // for "admit"
	}
	tests := []struct {
		name  string
		cfg   breakerConfig
		steps []step
	}{
		{"failures below the threshold keep it closed", cfg, []step{
			{do: "fail", want: CircuitClosed},
			{do: "fail", want: CircuitClosed},
			{do: "ok", want: CircuitClosed},
			{do: "fail", want: CircuitClosed},
			{do: "fail", want: CircuitClosed},
			{do: "admit", want: CircuitClosed, adm: admitAll},
		}},
		{"opens, waits, probes, closes", cfg, []step{
			{do: "fail", want: CircuitClosed},
			{do: "fail", want: CircuitClosed},
			{do: "fail", want: CircuitOpen},
			{do: "admit", at: 30 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "fail", at: 31 * time.Second, want: CircuitOpen}, // began before it opened
			{do: "admit", at: time.Minute, want: CircuitHalfOpen, adm: admitProbe},
			{do: "admit", at: time.Minute, want: CircuitHalfOpen, adm: admitNone}, // one probe at a time
			{do: "fail", at: time.Minute, want: CircuitHalfOpen},                  // not the probe
			{do: "probe-ok", at: time.Minute, want: CircuitClosed},
			{do: "admit", at: time.Minute, want: CircuitClosed, adm: admitAll},
		}},
		{"a failed probe opens it for another cooldown", cfg, []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: CircuitOpen},
			{do: "admit", at: time.Minute, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-fail", at: time.Minute, want: CircuitOpen},
			{do: "admit", at: time.Minute + 59*time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 2 * time.Minute, want: CircuitHalfOpen, adm: admitProbe},
		}},
		{"a probe that found nothing is offered again", cfg, []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: CircuitOpen},
			{do: "admit", at: time.Minute, want: CircuitHalfOpen, adm: admitProbe},
			{do: "unused", at: time.Minute, want: CircuitHalfOpen},
			{do: "admit", at: time.Minute, want: CircuitHalfOpen, adm: admitProbe},
		}},
		{"a late success closes an open circuit", cfg, []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: CircuitOpen},
			{do: "ok", at: time.Second, want: CircuitClosed},
		}},
		{"failed probes double the cooldown up to its maximum", growing, []step{
			{do: "fail", want: CircuitOpen},
			{do: "admit", at: 4 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 5 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-fail", at: 5 * time.Second, want: CircuitOpen}, // for 10s
			{do: "admit", at: 14 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 15 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-fail", at: 15 * time.Second, want: CircuitOpen}, // for 20s
			{do: "admit", at: 34 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 35 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-fail", at: 35 * time.Second, want: CircuitOpen}, // for 40s, the maximum
			{do: "admit", at: 74 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 75 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-fail", at: 75 * time.Second, want: CircuitOpen}, // still 40s
			{do: "admit", at: 114 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 115 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
		}},
		{"a success resets the cooldown to the first", growing, []step{
			{do: "fail", want: CircuitOpen},
			{do: "admit", at: 5 * time.Second, adm: admitProbe},
			{do: "probe-fail", at: 5 * time.Second, want: CircuitOpen}, // for 10s
			{do: "admit", at: 15 * time.Second, adm: admitProbe},
			{do: "probe-ok", at: 15 * time.Second, want: CircuitClosed},
			{do: "fail", at: 20 * time.Second, want: CircuitOpen}, // for 5s again
			{do: "admit", at: 24 * time.Second, want: CircuitOpen, adm: admitNone},
			{do: "admit", at: 25 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
		}},
		{"an operator's replay is the probe at once", growing, []step{
			{do: "fail", want: CircuitOpen},
			{do: "admit", at: time.Second, want: CircuitOpen, adm: admitNone},
			{do: "probe-now", at: time.Second, want: CircuitOpen},
			{do: "admit", at: time.Second, want: CircuitHalfOpen, adm: admitProbe},
			{do: "probe-now", at: time.Second, want: CircuitHalfOpen}, // a probe is out: no second
			{do: "admit", at: time.Second, want: CircuitHalfOpen, adm: admitNone},
			{do: "probe-fail", at: time.Second, want: CircuitOpen}, // for 10s
			{do: "probe-now", at: 2 * time.Second, want: CircuitOpen},
			{do: "admit", at: 2 * time.Second, want: CircuitHalfOpen, adm: admitProbe},
		}},
		{"disabled never opens", breakerConfig{failures: 1, cooldown: time.Minute, disabled: true}, []step{
			{do: "fail", want: CircuitClosed},
			{do: "fail", want: CircuitClosed},
			{do: "admit", want: CircuitClosed, adm: admitAll},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(tt.cfg)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				switch s.do {
				case "ok", "fail", "probe-ok", "probe-fail":
					b.record(s.do == "ok" || s.do == "probe-ok", s.do == "probe-ok" || s.do == "probe-fail", now, "e")
				case "unused":
					b.probeUnused()
				case "probe-now":
					b.probeNow(now)
				case "admit":
					if adm, _, _ := b.admit(now); adm != s.adm {
						t.Fatalf("step %d: admit = %v, want %v", i, adm, s.adm)
					}
				}
				if s.want != "" && b.view().state != s.want {
					t.Fatalf("step %d (%s): state %s, want %s", i, s.do, b.view().state, s.want)
				}
			}
		})
	}
}

func TestBreakerConfigureDisabledCloses(t *testing.T) {
	b := newBreaker(breakerConfig{failures: 1, cooldown: time.Hour})
	b.record(false, false, time.Now(), "boom")
	if tr := b.configure(breakerConfig{failures: 1, cooldown: time.Hour, disabled: true}); tr.state != CircuitClosed {
		t.Fatalf("configure(disabled) = %+v, want a transition to closed", tr)
	}
	if v := b.view(); v.state != CircuitClosed || v.failures != 1 || v.lastError != "boom" {
		t.Fatalf("view = %+v", v)
	}
}

// circuitLog collects OnCircuit reports.
type circuitLog struct {
	mu     sync.Mutex
	states []string
}

func (c *circuitLog) add(_ string, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states = append(c.states, state)
}

func (c *circuitLog) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.states)
}

// armingClock is a Fake that notes the duration of every timer armed with
// AfterFunc, so a test can wait until a dispatcher waits on it.
type armingClock struct {
	*clock.Fake
	mu    sync.Mutex
	armed []time.Duration
}

func (c *armingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.Fake.AfterFunc(d, f)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = append(c.armed, d)
	return t
}

// waitArmed waits until a timer of d has been armed.
func (c *armingClock) waitArmed(t *testing.T, d time.Duration) {
	t.Helper()
	waitFor(t, "a timer of "+d.String(), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Contains(c.armed, d)
	})
}

// TestCircuitOpensAndCloses runs a destination whose first four requests
// fail, with circuit {failures: 3}, on a clock that only the test moves:
// three failures open the circuit, no request reaches the receiver until
// the clock passes the cooldown, the first probe fails and opens it again
// for twice as long, the second succeeds and closes it, and every delivery
// arrives with no attempt spent while paused.
func TestCircuitOpensAndCloses(t *testing.T) {
	const first, cooldown = 7 * time.Minute, 10 * time.Minute // 14m capped at 10m
	// An hour behind, so that due times it stamps are due for the store.
	t0 := time.Now().Add(-time.Hour)
	clk := &armingClock{Fake: clock.NewFake(t0)}
	var r *running
	started := make(chan struct{}) // r is set
	var mu sync.Mutex
	var seenStates []string // the circuit's state as each request arrives
	var seenAt []time.Duration
	sk := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		<-started
		mu.Lock()
		seenStates = append(seenStates, r.States()[0].Circuit)
		seenAt = append(seenAt, clk.Now().Sub(t0))
		mu.Unlock()
		if n <= 4 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	d := dest("crm", sk.URL)
	d.Concurrency = 1
	d.Retry.InitialInterval, d.Retry.MaxInterval = config.Duration(time.Millisecond), config.Duration(time.Millisecond)
	d.Retry.MaxAttempts = 10
	d.Circuit = config.Circuit{Failures: 3, FirstCooldown: config.Duration(first), Cooldown: config.Duration(cooldown)}
	st := newTestStore(t)
	var ids []string
	for range 3 {
		ids = append(ids, accept(t, st, store.Event{Body: []byte("x")}, "crm"))
	}
	var log circuitLog
	opts := testOptions()
	opts.OnCircuit = log.add
	opts.Clock = clk
	r = startManager(t, st, []config.Destination{d}, opts)
	close(started)

	clk.waitArmed(t, first) // open, and waiting out the first cooldown
	clk.Advance(first)      // the first probe, which fails
	clk.waitArmed(t, cooldown)
	clk.Advance(cooldown) // the second probe, which succeeds
	attempts := 0
	for _, id := range ids {
		attempts += waitState(t, st, id, "crm", store.StateDelivered).Attempts
	}
	if attempts != 7 {
		t.Errorf("%d attempts in all, want 7 (4 failures, 3 successes)", attempts)
	}
	wantTransitions := []string{CircuitOpen, CircuitHalfOpen, CircuitOpen, CircuitHalfOpen, CircuitClosed}
	if got := log.get(); !slices.Equal(got, wantTransitions) {
		t.Errorf("OnCircuit reported %v, want %v", got, wantTransitions)
	}
	mu.Lock()
	defer mu.Unlock()
	wantSeen := []string{CircuitClosed, CircuitClosed, CircuitClosed, CircuitHalfOpen, CircuitHalfOpen, CircuitClosed, CircuitClosed}
	if !slices.Equal(seenStates, wantSeen) {
		t.Errorf("circuit states as requests arrived: %v, want %v (none while open)", seenStates, wantSeen)
	}
	wantAt := []time.Duration{0, 0, 0, first, first + cooldown, first + cooldown, first + cooldown}
	if !slices.Equal(seenAt, wantAt) {
		t.Errorf("requests arrived at %v on the clock, want %v (each probe when its cooldown ended)", seenAt, wantAt)
	}
	s := r.States()[0]
	if s.Circuit != CircuitClosed || s.ConsecutiveFailures != 0 || s.LastSuccess.IsZero() || s.LastFailure.IsZero() || s.LastError == "" {
		t.Errorf("state = %+v", s)
	}
}

// TestCircuitReleasesLeasedDeliveries opens the circuit while other
// deliveries wait for the rate limit: they must be given back unattempted,
// not attempted nor dead-lettered.
func TestCircuitReleasesLeasedDeliveries(t *testing.T) {
	sk := newSink(t, status(http.StatusServiceUnavailable))
	d := dest("crm", sk.URL)
	d.Concurrency = 3
	d.RateLimit = 2 // the second and third wait 0.5s and 1s for their turn
	d.Circuit = config.Circuit{Failures: 1, Cooldown: config.Duration(time.Hour)}
	st := newTestStore(t)
	cq := &releaseCounter{Queue: st}
	var ids []string
	for range 3 {
		ids = append(ids, accept(t, st, store.Event{Body: []byte("x")}, "crm"))
	}
	r := startManager(t, cq, []config.Destination{d}, testOptions())

	waitFor(t, "two deliveries to be released", func() bool { return cq.count() == 2 })
	if n := len(sk.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1 (the one that opened the circuit)", n)
	}
	attempts := 0
	for _, id := range ids {
		got := deliveryOf(t, st, id, "crm")
		if got.State != store.StatePending {
			t.Errorf("delivery %s is %s, want pending", id, got.State)
		}
		attempts += got.Attempts
	}
	if attempts != 1 {
		t.Errorf("%d attempts recorded, want 1", attempts)
	}
	// A worker frees its slot just after its release returns.
	waitFor(t, "nothing in flight", func() bool { return r.States()[0].InFlight == 0 })
	if s := r.States()[0]; s.Circuit != CircuitOpen || s.ConsecutiveFailures != 1 {
		t.Errorf("state = %+v, want open, 1 failure", s)
	}
}

// releaseCounter counts Release calls.
type releaseCounter struct {
	Queue
	mu       sync.Mutex
	released int
}

func (c *releaseCounter) Release(ctx context.Context, d store.Delivery, due time.Time) error {
	err := c.Queue.Release(ctx, d, due)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released++
	return err
}

func (c *releaseCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}
