package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// fakeClock is a clock (as nowClock(c.Now)) that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestCircuitProbe pins down how the probe of a half-open agent destination
// is settled, on a fake clock: its reported failure opens the circuit for
// another cooldown, its success closes it, and a probe that ends without an
// attempt (released, or its lease ran out unreported) or whose report the
// store refused lets the next poll take another at once, while one kept by
// heartbeats holds everything else back. "fragile" opens after one failure,
// for an hour, and retries after an hour or more, so no retry falls due (on
// the store's real clock) meanwhile.
func TestCircuitProbe(t *testing.T) {
	const lease = time.Minute
	tests := []struct {
		name   string
		settle func(t *testing.T, ts *testServer, clock *fakeClock, probe assignment)
		want   string // the circuit after settle
		next   int    // deliveries a poll then gets
	}{
		{"reported failure", func(t *testing.T, ts *testServer, _ *fakeClock, p assignment) {
			ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: p.Ticket, Status: 503}}})
		}, deliver.CircuitOpen, 0},
		{"reported success", func(t *testing.T, ts *testServer, _ *fakeClock, p assignment) {
			ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: p.Ticket, Status: 200}}})
		}, deliver.CircuitClosed, 1},
		{"reported, refused by the store", func(t *testing.T, ts *testServer, _ *fakeClock, p assignment) {
			// The store no longer knows this lease (given back behind the
			// server's back, as another relay taking it over would): the
			// report reaches the store and is refused, so its failure is
			// not held against the receiver and the probe's turn comes back.
			tk, err := decodeTicket(p.Ticket)
			if err != nil {
				t.Fatal(err)
			}
			if err := ts.st.Release(context.Background(), store.Delivery{ID: tk.ID, Lease: tk.Lease}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if resp := ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: p.Ticket, Status: 503}}}); resp.Acks[0] != ackLeaseLost {
				t.Errorf("report acked %q, want %q", resp.Acks[0], ackLeaseLost)
			}
		}, deliver.CircuitHalfOpen, 1},
		{"released", func(t *testing.T, ts *testServer, _ *fakeClock, p assignment) {
			ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: p.Ticket, Release: true}}})
		}, deliver.CircuitHalfOpen, 1},
		{"lease ran out unreported", func(_ *testing.T, _ *testServer, clock *fakeClock, _ assignment) {
			clock.advance(lease)
		}, deliver.CircuitHalfOpen, 1},
		{"kept by heartbeats", func(t *testing.T, ts *testServer, clock *fakeClock, p assignment) {
			for range 3 {
				clock.advance(lease / 2)
				if resp := ts.report(t, "office-2", reportRequest{Held: []string{p.Ticket}}); len(resp.Lost) != 0 {
					t.Fatal("the probe's lease was lost although extended")
				}
			}
		}, deliver.CircuitHalfOpen, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Now()}
			ts := newTestServer(t, ServerOptions{Lease: lease, Clock: nowClock(clock.Now)})
			for range 3 {
				ts.queue(t, "fragile")
			}
			ts.failFragile(t)
			if c, _ := ts.circuit("fragile"); c.Circuit != deliver.CircuitOpen || c.ConsecutiveFailures != 1 {
				t.Fatalf("after a failure: %+v, want open after 1 failure", c)
			}
			if got := ts.lease(t, "office-2", 10, 0); len(got) != 0 {
				t.Fatalf("an open circuit handed out %d deliveries", len(got))
			}
			clock.advance(time.Hour)
			probes := ts.lease(t, "office-2", 10, 0)
			if len(probes) != 1 {
				t.Fatalf("after the cooldown a poll got %d deliveries, want one probe", len(probes))
			}
			if got := ts.lease(t, "office-2", 10, 0); len(got) != 0 {
				t.Fatalf("with the probe out a poll got %d more", len(got))
			}

			tt.settle(t, ts, clock, probes[0])
			if c, _ := ts.circuit("fragile"); c.Circuit != tt.want {
				t.Errorf("circuit %s, want %s", c.Circuit, tt.want)
			}
			if got := ts.lease(t, "office-2", 10, 0); len(got) != tt.next {
				t.Errorf("next poll got %d deliveries, want %d", len(got), tt.next)
			}
		})
	}
}

// TestCircuitAcrossReload checks that a reload keeps an agent destination's
// breaker, as it keeps a dispatcher's: an open circuit stays open under the
// same settings, takes a new cooldown from the new file, and closes when the
// new file turns the breaker off. A destination dropped by a reload and
// added back starts closed.
func TestCircuitAcrossReload(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	ts := newTestServer(t, ServerOptions{Lease: time.Minute, Clock: nowClock(clock.Now)})
	if !strings.Contains(serverConfig, fragileLine) {
		t.Fatal("serverConfig does not hold fragileLine")
	}
	reload := func(fragile string) {
		t.Helper()
		src := strings.Replace(serverConfig, fragileLine, fragile, 1)
		cfg, err := config.Load([]byte(src), "agents.yaml")
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		ts.reload(t, cfg)
	}
	circ := func() state.Destination {
		t.Helper()
		c, ok := ts.circuit("fragile")
		if !ok {
			t.Fatal("fragile has no circuit")
		}
		return c
	}
	open := func() {
		t.Helper()
		ts.queue(t, "fragile")
		ts.failFragile(t)
		if c := circ(); c.Circuit != deliver.CircuitOpen {
			t.Fatalf("after a failure the circuit is %s, want open", c.Circuit)
		}
	}

	open()
	reload(fragileLine)
	if c := circ(); c.Circuit != deliver.CircuitOpen || c.ConsecutiveFailures != 1 {
		t.Errorf("after a reload with the same settings: %s after %d failures, want open after 1", c.Circuit, c.ConsecutiveFailures)
	}
	if got := ts.lease(t, "office-2", 10, 0); len(got) != 0 {
		t.Errorf("after the reload an open circuit handed out %d deliveries", len(got))
	}

	// A new cooldown applies from the next opening: the one under way
	// keeps the hour it opened with, and its failed probe opens the
	// circuit for a minute.
	reload(strings.Replace(fragileLine, "cooldown: 1h, first_cooldown: 1h", "cooldown: 1m, first_cooldown: 1m", 1))
	ts.queue(t, "fragile") // due now; the first waits an hour for its retry
	clock.advance(time.Minute)
	if got := ts.lease(t, "office-2", 10, 0); len(got) != 0 {
		t.Errorf("a minute into the hour's cooldown a poll got %d deliveries, want none", len(got))
	}
	clock.advance(time.Hour)
	probe := ts.lease(t, "office-2", 10, 0)
	if len(probe) != 1 {
		t.Fatalf("after the hour a poll got %d deliveries, want one probe", len(probe))
	}
	ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: probe[0].Ticket, Status: 503}}})
	ts.queue(t, "fragile")
	clock.advance(time.Minute)
	if got := ts.lease(t, "office-2", 10, 0); len(got) != 1 {
		t.Errorf("a minute after the failed probe a poll got %d deliveries, want one probe (the new cooldown)", len(got))
	}

	reload(strings.Replace(fragileLine, "circuit: {failures: 1, cooldown: 1h, first_cooldown: 1h}", "circuit: {disabled: true}", 1))
	if c := circ(); c.Circuit != deliver.CircuitClosed {
		t.Errorf("with the breaker turned off the circuit is %s, want closed", c.Circuit)
	}

	reload(fragileLine)
	open()
	reload("") // fragile dropped
	if _, ok := ts.circuit("fragile"); ok {
		t.Error("a destination dropped by a reload still has a circuit")
	}
	reload(fragileLine)
	if c := circ(); c.Circuit != deliver.CircuitClosed || c.ConsecutiveFailures != 0 {
		t.Errorf("added back: %s after %d failures, want a new closed circuit", c.Circuit, c.ConsecutiveFailures)
	}
}

// failFragile leases one delivery of the fragile destination, whose circuit
// opens after one failure, and reports its attempt failed.
func (ts *testServer) failFragile(t *testing.T) {
	t.Helper()
	d := ts.leaseOne(t, "office-2", "fragile")
	ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: d.Ticket, Status: 503}}})
}

// fragileLine is the fragile destination's line in serverConfig.
const fragileLine = `  - {name: fragile, agent: office-2, url: "http://10.0.0.6/fragile", circuit: {failures: 1, cooldown: 1h, first_cooldown: 1h}, retry: {initial_interval: 1h, max_interval: 2h}}
`

// An operator's replay counts as an agent destination's probe too: with the
// circuit open for an hour, the next poll after Replayed gets one delivery.
func TestReplayedAgentDestinationProbesAtOnce(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	ts := newTestServer(t, ServerOptions{Lease: time.Minute, Clock: nowClock(clock.Now)})
	ts.queue(t, "fragile")
	ts.failFragile(t)
	if c, _ := ts.circuit("fragile"); c.Circuit != deliver.CircuitOpen {
		t.Fatalf("after a failure the circuit is %s, want open", c.Circuit)
	}
	ts.queue(t, "fragile")
	if got := ts.lease(t, "office-2", 10, 0); len(got) != 0 {
		t.Fatalf("an open circuit handed out %d deliveries", len(got))
	}
	ts.Replayed("fragile")
	if got := ts.lease(t, "office-2", 10, 0); len(got) != 1 {
		t.Fatalf("after the replay a poll got %d deliveries, want one probe", len(got))
	}
}
