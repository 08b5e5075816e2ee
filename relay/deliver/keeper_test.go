package deliver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// newTestKeeper returns a dispatcher's keeper over q, on a fake clock that
// is also the dispatcher's.
func newTestKeeper(t *testing.T, q Queue) (*keeper, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := testOptions()
	opts.Clock = clk
	opts = opts.withDefaults()
	pl, err := newPipeline(q, dest("k", "http://127.0.0.1:1"), &opts)
	if err != nil {
		t.Fatal(err)
	}
	dp := newDispatcher(pl)
	t.Cleanup(dp.keep.extensions.Wait)
	return &dp.keep, clk
}

// watched hands out one delivery under k, with an attempt bound to end at
// deadline; the returned channel closes when the keeper cuts it.
func watched(t *testing.T, k *keeper, lease time.Duration, deadline time.Time) (*extender, <-chan struct{}) {
	t.Helper()
	ctx, cut := context.WithCancel(context.Background())
	t.Cleanup(cut)
	e := k.dp.extend(context.Background(), &profile{lease: lease}, store.Delivery{ID: store.NewID("dlv")}, k.dp.opts.Clock.Now())
	t.Cleanup(e.stop)
	e.bound(deadline, cut)
	return e, ctx.Done()
}

// TestKeeperCutsAttemptsAtTheirDeadline: the keeper's one timer is armed
// for the earliest deadline, also when a later one was armed first and when
// the attempts bound before it ended long ago.
func TestKeeperCutsAttemptsAtTheirDeadline(t *testing.T) {
	k, clk := newTestKeeper(t, newTestStore(t))
	now := clk.Now()
	// An hour-long attempt arms the timer an hour out.
	_, late := watched(t, k, 2*time.Hour, now.Add(time.Hour))
	// Attempts that end before their deadline are never cut.
	var ended []<-chan struct{}
	for range 50 {
		e, cut := watched(t, k, 2*time.Hour, now.Add(30*time.Millisecond))
		e.unbound()
		e.stop()
		ended = append(ended, cut)
	}
	// One that hangs, due sooner than what the timer was armed for.
	_, hung := watched(t, k, 2*time.Hour, now.Add(30*time.Millisecond))
	clk.Advance(30 * time.Millisecond) // runs the timer's tick, which cuts synchronously
	select {
	case <-hung:
	default:
		t.Fatal("the hanging attempt was not cut at its deadline")
	}
	clk.Advance(time.Minute) // well past every ended attempt's deadline
	for i, cut := range ended {
		select {
		case <-cut:
			t.Fatalf("attempt %d was cut after it ended", i)
		default:
		}
	}
	select {
	case <-late:
		t.Fatal("the hour-long attempt was cut early")
	default:
	}
}

// TestKeeperExtendsOnlyLiveLeases: a handed-out delivery's lease is
// extended every lease/3 until it stops, and not after.
func TestKeeperExtendsOnlyLiveLeases(t *testing.T) {
	const lease = 60 * time.Millisecond
	q := &countingQueue{Queue: &nullQueue{}}
	k, clk := newTestKeeper(t, q)
	e := k.dp.extend(context.Background(), &profile{lease: lease}, store.Delivery{ID: "d1"}, clk.Now())
	first := e.expires()
	for i := range int32(3) {
		clk.Advance(lease / 3)
		k.extensions.Wait() // the extension the tick started, if any
		if got := q.extends.Load(); got != i+1 {
			t.Fatalf("%d extensions after %d periods, want %d", got, i+1, i+1)
		}
	}
	e.stop()
	if !e.expires().After(first) {
		t.Fatalf("expiry %v was not moved on from %v by the extensions", e.expires(), first)
	}
	n := q.extends.Load()
	for range 5 {
		clk.Advance(lease / 3)
		k.extensions.Wait()
	}
	if got := q.extends.Load(); got != n {
		t.Fatalf("%d extensions after stop", got-n)
	}
}

// nullQueue accepts every call and stores nothing.
type nullQueue struct{ Queue }

func (nullQueue) ExtendLease(context.Context, store.Delivery, time.Duration) error { return nil }

// TestWorkerContextRenewedAfterTimeout: a worker whose attempt timed out
// makes its next attempt under a live context. With one worker, a reused
// canceled context would fail the second delivery at once.
func TestWorkerContextRenewedAfterTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	sk := newSink(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select { // the first request hangs past the timeout
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	d := dest("crm", sk.URL)
	d.Concurrency = 1
	d.Timeout = config.Duration(100 * time.Millisecond)
	st := newTestStore(t)
	first := accept(t, st, store.Event{Body: []byte("1")}, "crm")
	startManager(t, st, []config.Destination{d}, testOptions())
	got := waitState(t, st, first, "crm", store.StateDelivered)
	if len(got.AttemptLog) != 2 || !strings.Contains(got.AttemptLog[0].Error, "timed out after 100ms") {
		t.Fatalf("first delivery's attempts: %+v; want a timeout, then a success", got.AttemptLog)
	}
	second := accept(t, st, store.Event{Body: []byte("2")}, "crm")
	if got := waitState(t, st, second, "crm", store.StateDelivered); got.Attempts != 1 {
		t.Fatalf("second delivery took %d attempts, want 1: %+v", got.Attempts, got.AttemptLog)
	}
}
