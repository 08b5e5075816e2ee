package agent

import (
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/deliver"
)

// fakeClock is a ServerOptions.Now that moves only when told.
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
// attempt (released, or its lease ran out unreported) lets the next poll
// take another at once, while one kept by heartbeats holds everything else
// back. "fragile" opens after one failure, for an hour, and retries after an
// hour or more, so no retry falls due (on the store's real clock) meanwhile.
func TestCircuitProbe(t *testing.T) {
	const lease = time.Minute
	tests := []struct {
		name   string
		settle func(t *testing.T, ts *testServer, clock *fakeClock, probe job)
		want   string // the circuit after settle
		next   int    // deliveries a poll then gets
	}{
		{"reported failure", func(t *testing.T, ts *testServer, _ *fakeClock, p job) {
			ts.report(t, "office-2", reportRequest{Outcomes: []outcome{{Ticket: p.Ticket, Status: 503}}})
		}, deliver.CircuitOpen, 0},
		{"reported success", func(t *testing.T, ts *testServer, _ *fakeClock, p job) {
			ts.report(t, "office-2", reportRequest{Outcomes: []outcome{{Ticket: p.Ticket, Status: 200}}})
		}, deliver.CircuitClosed, 1},
		{"released", func(t *testing.T, ts *testServer, _ *fakeClock, p job) {
			ts.report(t, "office-2", reportRequest{Outcomes: []outcome{{Ticket: p.Ticket, Release: true}}})
		}, deliver.CircuitHalfOpen, 1},
		{"lease ran out unreported", func(_ *testing.T, _ *testServer, clock *fakeClock, _ job) {
			clock.advance(lease)
		}, deliver.CircuitHalfOpen, 1},
		{"kept by heartbeats", func(t *testing.T, ts *testServer, clock *fakeClock, p job) {
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
			ts := newTestServer(t, ServerOptions{Lease: lease, Now: clock.Now})
			for range 3 {
				ts.queue(t, "fragile")
			}
			first := ts.leaseOne(t, "office-2", "fragile")
			ts.report(t, "office-2", reportRequest{Outcomes: []outcome{{Ticket: first.Ticket, Status: 503}}})
			if c, _ := ts.Circuit("fragile"); c.Circuit != deliver.CircuitOpen || c.ConsecutiveFailures != 1 {
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
			if c, _ := ts.Circuit("fragile"); c.Circuit != tt.want {
				t.Errorf("circuit %s, want %s", c.Circuit, tt.want)
			}
			if got := ts.lease(t, "office-2", 10, 0); len(got) != tt.next {
				t.Errorf("next poll got %d deliveries, want %d", len(got), tt.next)
			}
		})
	}
}
