package deliver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// testStore is what the tests need of a store: the Queue, plus Accept to
// queue work and Event to look at what was recorded.
type testStore interface {
	Queue
	Accept(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error)
	Event(ctx context.Context, id string) (store.EventRecord, error)
}

// newTestStore opens a real embedded store in a temporary directory.
func newTestStore(tb testing.TB) testStore {
	tb.Helper()
	st, err := bolt.Open(tb.TempDir(), bolt.Options{})
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// waitTimeout is generous: tests wait for states, never for durations.
const waitTimeout = 15 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dest returns a destination with test-sized intervals.
func dest(name, url string) config.Destination {
	return config.Destination{
		Name:        name,
		URL:         url,
		Timeout:     config.Duration(5 * time.Second),
		Concurrency: 2,
		Retry: config.Retry{
			MaxAttempts:     5,
			InitialInterval: config.Duration(10 * time.Millisecond),
			MaxInterval:     config.Duration(20 * time.Millisecond),
			MaxAge:          config.Duration(time.Hour),
		},
	}
}

func testOptions() Options {
	return Options{
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 5 * time.Millisecond,
		DrainTimeout: 5 * time.Second,
		Version:      "test",
	}
}

// running is a Manager started by startManager.
type running struct {
	*Manager
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and waits for it to return.
func (r *running) stop(tb testing.TB) {
	tb.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			tb.Errorf("Run: %v", err)
		}
		r.done <- nil // let a second stop (the cleanup) return at once
	case <-time.After(waitTimeout):
		tb.Fatal("Run did not return after cancel")
	}
}

func startManager(tb testing.TB, q Queue, dests []config.Destination, opts Options) *running {
	tb.Helper()
	m, err := NewManager(q, dests, opts)
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Manager: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	tb.Cleanup(func() { r.stop(tb) })
	return r
}

// accept queues one event for dests and returns its id.
func accept(tb testing.TB, st testStore, ev store.Event, dests ...string) string {
	tb.Helper()
	if ev.WebhookID == "" {
		ev.WebhookID = "1001"
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = time.Now()
	}
	res, err := st.Accept(context.Background(), ev, dests, store.Dedupe{Key: ev.DedupeKey, TTL: time.Hour})
	if err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	return res.EventID
}

// deliveryOf returns the event's delivery to dest.
func deliveryOf(tb testing.TB, st testStore, eventID, dest string) store.DeliveryRecord {
	tb.Helper()
	rec, err := st.Event(context.Background(), eventID)
	if err != nil {
		tb.Fatalf("Event(%s): %v", eventID, err)
	}
	for _, d := range rec.Deliveries {
		if d.Destination == dest {
			return d
		}
	}
	tb.Fatalf("event %s has no delivery to %s", eventID, dest)
	return store.DeliveryRecord{}
}

// waitState waits until the event's delivery to dest reaches state.
func waitState(tb testing.TB, st testStore, eventID, dest string, state store.DeliveryState) store.DeliveryRecord {
	tb.Helper()
	var d store.DeliveryRecord
	waitFor(tb, "delivery to "+dest+" to be "+string(state), func() bool {
		d = deliveryOf(tb, st, eventID, dest)
		return d.State == state
	})
	return d
}
