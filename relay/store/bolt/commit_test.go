package bolt

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// lingerAsync runs linger, with limit, on a store whose queue holds the
// first op and the rest of what gatherStore queued, and returns a channel
// that gets its result.
func lingerAsync(s *Store, limit int, short, long time.Duration) <-chan []*op {
	got := make(chan []*op, 1)
	go func() {
		first := <-s.ops
		got <- s.linger([]*op{first}, limit, short, long)
	}()
	return got
}

// asyncOutcome is an outcome whose caller goes on without the answer
// (finishAsync); waitedOutcome is one whose caller waits for it.
func asyncOutcome() *op  { return &op{out: &outcome{}, notify: func(error) {}} }
func waitedOutcome() *op { return &op{out: &outcome{}} }

func gatherStore(maxBatch int, queued ...*op) *Store {
	s := &Store{ops: make(chan *op, 16), maxBatch: maxBatch}
	for _, o := range queued {
		s.ops <- o
	}
	return s
}

func wantOps(t *testing.T, got <-chan []*op, n int) {
	t.Helper()
	select {
	case ops := <-got:
		if len(ops) != n {
			t.Fatalf("returned %d ops, want %d", len(ops), n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not return")
	}
}

func notYet(t *testing.T, got <-chan []*op) {
	t.Helper()
	select {
	case ops := <-got:
		t.Fatalf("returned %d ops before its time", len(ops))
	case <-time.After(20 * time.Millisecond):
	}
}

// Outcomes nobody waits for wait for company until long ends, past short.
func TestLingerWaitsLongForOutcomesNobodyWaitsFor(t *testing.T) {
	s := gatherStore(100, asyncOutcome(), asyncOutcome())
	got := lingerAsync(s, 100, time.Millisecond, 200*time.Millisecond)
	notYet(t, got)
	s.ops <- asyncOutcome()
	wantOps(t, got, 3)
}

// Once a caller waits for its answer, the linger ends short after it began:
// whether that outcome was there from the start or arrives late.
func TestLingerEndsShortForAWaitingCaller(t *testing.T) {
	s := gatherStore(100, waitedOutcome())
	wantOps(t, lingerAsync(s, 100, time.Millisecond, time.Hour), 1)

	s = gatherStore(100, asyncOutcome())
	got := lingerAsync(s, 100, 10*time.Millisecond, time.Hour)
	notYet(t, got) // past short, which does not apply yet
	s.ops <- waitedOutcome()
	wantOps(t, got, 2)

	s = gatherStore(100, asyncOutcome())
	got = lingerAsync(s, 100, 200*time.Millisecond, time.Hour)
	s.ops <- waitedOutcome()
	notYet(t, got) // short has not passed
	wantOps(t, got, 2)
}

// An accept (any write that is not an outcome) ends the wait at once, and
// what is already queued behind it joins the batch, past limit.
func TestLingerEndsOnAccept(t *testing.T) {
	s := gatherStore(100, asyncOutcome())
	got := lingerAsync(s, 100, time.Hour, time.Hour)
	notYet(t, got)
	s.ops <- &op{}
	wantOps(t, got, 2)

	s = gatherStore(100, asyncOutcome(), &op{}, asyncOutcome(), asyncOutcome())
	wantOps(t, lingerAsync(s, 2, time.Hour, time.Hour), 4)
}

// A linger ends as soon as limit outcomes are waiting, never past maxBatch,
// and when the store closes.
func TestLingerStopsAtLimitMaxBatchAndClose(t *testing.T) {
	s := gatherStore(100, asyncOutcome(), asyncOutcome(), asyncOutcome(), asyncOutcome())
	wantOps(t, lingerAsync(s, 3, time.Hour, time.Hour), 3)

	s = gatherStore(3, asyncOutcome(), asyncOutcome(), asyncOutcome(), asyncOutcome())
	wantOps(t, lingerAsync(s, 100, time.Hour, time.Hour), 3)

	s = gatherStore(100, asyncOutcome())
	got := lingerAsync(s, 100, time.Hour, time.Hour)
	notYet(t, got)
	close(s.ops) // Close during a linger
	wantOps(t, got, 1)
}

// gather takes only what is already waiting, up to limit and maxBatch.
func TestGatherTakesWhatWaits(t *testing.T) {
	for _, c := range []struct{ queued, limit, maxBatch, want int }{
		{queued: 3, limit: 100, maxBatch: 100, want: 3},
		{queued: 5, limit: 2, maxBatch: 100, want: 2},
		{queued: 5, limit: 100, maxBatch: 4, want: 4},
		{queued: 0, limit: 100, maxBatch: 100, want: 0},
	} {
		s := gatherStore(c.maxBatch)
		for range c.queued {
			s.ops <- asyncOutcome()
		}
		if got := s.gather(nil, c.limit); len(got) != c.want {
			t.Errorf("%+v: gather took %d ops", c, len(got))
		}
	}
}

// Settle hands an outcome over without waiting either way; one settled with
// a store.Awaiting context counts as waited for, so its linger ends short
// (an agent's report is answered once its outcomes are durable), and one
// settled without it lingers long.
func TestSettleAwaitingIsWaitedFor(t *testing.T) {
	for _, awaiting := range []bool{false, true} {
		s := gatherStore(100)
		ctx := context.Background()
		if awaiting {
			ctx = store.Awaiting(ctx)
		}
		s.Settle(ctx, store.Delivery{ID: "d", Lease: "l"}, store.Settlement{State: store.StateDelivered},
			func(err error) { t.Errorf("answered before the commit: %v", err) })
		o := <-s.ops
		if o.notify == nil {
			t.Fatal("Settle's outcome has no done to answer through")
		}
		if o.waited() != awaiting {
			t.Errorf("awaiting %v: waited() = %v", awaiting, o.waited())
		}
	}
}
