package deliver

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// TestUpdateChangesAddsAndRemoves reloads the destination set while Run
// runs: a changed destination's attempt in flight finishes with its old
// settings and the next attempt uses the new ones; an added destination
// starts; a removed one stops leasing and its deliveries stay queued.
func TestUpdateChangesAddsAndRemoves(t *testing.T) {
	entered := make(chan struct{}, 1)
	proceed := make(chan struct{})
	a := newSink(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			entered <- struct{}{}
			<-proceed // held past the new, shorter timeout
		}
	})
	b := newSink(t, status(200))
	st := newTestStore(t)
	aOld := dest("a", a.URL)
	aOld.Concurrency = 1
	aOld.Headers = map[string]string{"X-Version": "1"}
	first := accept(t, st, store.Event{Body: []byte("1")}, "a")
	r := startManager(t, st, []config.Destination{aOld}, testOptions())
	<-entered

	aNew := aOld
	aNew.Headers = map[string]string{"X-Version": "2"}
	aNew.Timeout = config.Duration(time.Millisecond) // would fail the held attempt if it applied
	aNew.Line = 42                                   // moved in the file: not itself a change
	bDest := dest("b", b.URL)
	office := config.Destination{Name: "office", Agent: "office-1", URL: "http://10.0.0.5/hook"}
	if err := r.Update([]config.Destination{aNew, bDest, office}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	aNew.Timeout = config.Duration(5 * time.Second) // now let a answer in time
	if err := r.Update([]config.Destination{aNew, bDest, office}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	close(proceed)
	if got := waitState(t, st, first, "a", store.StateDelivered); got.Attempts != 1 {
		t.Fatalf("the attempt in flight: %d attempts, want 1 (it kept its old timeout)", got.Attempts)
	}
	second := accept(t, st, store.Event{Body: []byte("2")}, "a", "b")
	r.Wake("a")
	r.Wake("b")
	waitState(t, st, second, "a", store.StateDelivered)
	waitState(t, st, second, "b", store.StateDelivered)
	reqs := a.requests()
	if v1, v2 := reqs[0].header.Get("X-Version"), reqs[1].header.Get("X-Version"); v1 != "1" || v2 != "2" {
		t.Errorf("X-Version %q then %q, want 1 then 2", v1, v2)
	}

	states := r.States()
	if len(states) != 3 || states[0].Name != "a" || states[1].Name != "b" || states[2].Name != "office" {
		t.Fatalf("States = %+v, want a, b, office in config order", states)
	}
	// An agent destination has its pipeline's breaker here, but no
	// dispatcher: nothing of it is in flight in this process.
	if s := states[2]; s.Agent != "office-1" || s.Circuit != CircuitClosed || s.InFlight != 0 || r.Pipeline("office") == nil {
		t.Errorf("agent destination state = %+v, want Agent office-1, a closed circuit, nothing in flight", s)
	}
	if s := states[1]; s.Circuit != CircuitClosed || s.LastSuccess.IsZero() || s.InFlight != 0 {
		t.Errorf("b state = %+v", s)
	}

	// Remove a. Its new delivery must stay queued while b goes on.
	if err := r.Update([]config.Destination{bDest}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	third := accept(t, st, store.Event{Body: []byte("3")}, "a")
	for range 3 { // b's deliveries, one after another, give a time to (wrongly) act
		id := accept(t, st, store.Event{Body: []byte("b")}, "b")
		r.Wake("a")
		r.Wake("b")
		waitState(t, st, id, "b", store.StateDelivered)
	}
	if got := deliveryOf(t, st, third, "a"); got.State != store.StatePending || got.Attempts != 0 || len(a.requests()) != 2 {
		t.Fatalf("removed destination: delivery %s with %d attempts, %d requests; want pending, 0, 2", got.State, got.Attempts, len(a.requests()))
	}
	if states := r.States(); len(states) != 1 || states[0].Name != "b" {
		t.Fatalf("States after removal = %+v", states)
	}

	// Add it back: it picks up where it stopped.
	if err := r.Update([]config.Destination{bDest, aNew}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	waitState(t, st, third, "a", store.StateDelivered)
}

func TestUpdateRefusesBadSetsAndChangesNothing(t *testing.T) {
	sk := newSink(t, status(200))
	st := newTestStore(t)
	good := dest("a", sk.URL)
	r := startManager(t, st, []config.Destination{good}, testOptions())
	bad := [][]config.Destination{
		{good, good},
		{good, dest("b", "ftp://x/")},
		{func() config.Destination { d := good; d.SigningSecret = "whsec_!!"; return d }()},
	}
	for i, set := range bad {
		if err := r.Update(set); !errors.Is(err, ErrBadDestination) && !errors.Is(err, ErrBadSecret) {
			t.Errorf("set %d: Update = %v, want a bad destination or secret", i, err)
		}
	}
	if s := r.States(); len(s) != 1 || s[0].Name != "a" {
		t.Fatalf("States after refused updates = %+v, want a alone", s)
	}
	id := accept(t, st, store.Event{Body: []byte("x")}, "a")
	r.Wake("a")
	waitState(t, st, id, "a", store.StateDelivered)
}

// TestUpdateBeforeRun swaps the set before Run starts: Run dispatches the
// new set only.
func TestUpdateBeforeRun(t *testing.T) {
	a, b := newSink(t, status(200)), newSink(t, status(200))
	st := newTestStore(t)
	m, err := NewManager(st, []config.Destination{dest("a", a.URL)}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]config.Destination{dest("b", b.URL)}); err != nil {
		t.Fatal(err)
	}
	ida := accept(t, st, store.Event{Body: []byte("a")}, "a")
	idb := accept(t, st, store.Event{Body: []byte("b")}, "b")
	r := &running{Manager: m, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	waitState(t, st, idb, "b", store.StateDelivered)
	if got := deliveryOf(t, st, ida, "a"); got.Attempts != 0 || len(a.requests()) != 0 {
		t.Fatalf("a, removed before Run, was attempted")
	}
}

// TestUpdateRaisingConcurrencyStartsQueuedDeliveries: deliveries leased
// ahead wait in the gate's queue while the only slot is held; a reload that
// raises the concurrency starts them without waiting for that attempt.
func TestUpdateRaisingConcurrencyStartsQueuedDeliveries(t *testing.T) {
	proceed := make(chan struct{})
	sk := newSink(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-proceed
		}
	})
	st := newTestStore(t)
	d := dest("a", sk.URL)
	d.Concurrency = 1
	d.Timeout = config.Duration(time.Minute)
	for range 3 {
		accept(t, st, store.Event{Body: []byte("x")}, "a")
	}
	// Leases outlast the test, so a delivery the reload failed to start
	// is not leased again either.
	opts := testOptions()
	opts.LeaseMargin = time.Hour
	r := startManager(t, st, []config.Destination{d}, opts)
	t.Cleanup(func() { close(proceed) }) // before the manager stops
	waitFor(t, "the first request", func() bool { return len(sk.requests()) == 1 })
	waitFor(t, "a delivery queued for the slot", func() bool {
		dp := r.set.Load().byName["a"]
		dp.slots.mu.Lock()
		defer dp.slots.mu.Unlock()
		return dp.slots.waiting() > 0
	})

	d.Concurrency = 3
	if err := r.Update([]config.Destination{d}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	waitFor(t, "all three requests while the first is held", func() bool { return len(sk.requests()) == 3 })
}

// Options.at reuses a reading of the real clock only when Clock is the real
// clock; a clock set for tests is read every time.
func TestOptionsAtReadsASetClock(t *testing.T) {
	reading := time.Unix(5, 0)
	if got := (Options{}).withDefaults(); got.at(reading) != reading {
		t.Errorf("default clock: at = %v, want the reading %v", got.at(reading), reading)
	}
	set := time.Unix(100, 0)
	o := Options{Clock: clock.NewFake(set)}.withDefaults()
	if got := o.at(reading); !got.Equal(set) {
		t.Errorf("set clock: at = %v, want %v", got, set)
	}
}
