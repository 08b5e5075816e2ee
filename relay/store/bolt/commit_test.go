package bolt

import (
	"testing"
	"time"
)

// gatherAsync runs gather, with no limit but the store's maxBatch, on a
// store whose queue holds queued, and returns a channel that gets its
// result.
func gatherAsync(s *Store, until <-chan time.Time) <-chan []*op {
	return gatherUpTo(s, s.maxBatch, until)
}

// gatherUpTo is gatherAsync with limit.
func gatherUpTo(s *Store, limit int, until <-chan time.Time) <-chan []*op {
	got := make(chan []*op, 1)
	go func() {
		first := <-s.ops
		got <- s.gather([]*op{first}, limit, until)
	}()
	return got
}

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
			t.Fatalf("gather returned %d ops, want %d", len(ops), n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gather did not return")
	}
}

func notYet(t *testing.T, got <-chan []*op) {
	t.Helper()
	select {
	case ops := <-got:
		t.Fatalf("gather returned %d ops before its time", len(ops))
	case <-time.After(20 * time.Millisecond):
	}
}

// Outcomes wait for company until the linger ends.
func TestGatherOutcomesWaitForUntil(t *testing.T) {
	s := gatherStore(100, &op{outcome: true}, &op{outcome: true})
	until := make(chan time.Time)
	got := gatherAsync(s, until)
	notYet(t, got)
	s.ops <- &op{outcome: true}
	notYet(t, got)
	close(until)
	wantOps(t, got, 3)
}

// An accept (any write that is not an outcome) ends the wait at once, and
// what is already queued behind it joins the batch.
func TestGatherEndsOnAccept(t *testing.T) {
	s := gatherStore(100, &op{outcome: true})
	got := gatherAsync(s, make(chan time.Time)) // never fires
	notYet(t, got)
	s.ops <- &op{}
	wantOps(t, got, 2)
}

// A linger ends as soon as limit outcomes are waiting; an accept lifts the
// limit to maxBatch.
func TestGatherStopsAtLimit(t *testing.T) {
	s := gatherStore(100, &op{outcome: true}, &op{outcome: true}, &op{outcome: true}, &op{outcome: true})
	wantOps(t, gatherUpTo(s, 3, make(chan time.Time)), 3) // never fires

	s = gatherStore(100, &op{outcome: true}, &op{}, &op{outcome: true}, &op{outcome: true})
	wantOps(t, gatherUpTo(s, 2, make(chan time.Time)), 4)
}

func TestGatherStopsAtMaxBatchAndClose(t *testing.T) {
	s := gatherStore(3, &op{outcome: true}, &op{outcome: true}, &op{outcome: true}, &op{outcome: true})
	wantOps(t, gatherAsync(s, make(chan time.Time)), 3)

	s = gatherStore(100, &op{outcome: true})
	got := gatherAsync(s, make(chan time.Time))
	notYet(t, got)
	close(s.ops) // Close during a linger
	wantOps(t, got, 1)

	// Without until, only what is already waiting.
	s = gatherStore(100, &op{outcome: true}, &op{outcome: true})
	wantOps(t, gatherAsync(s, nil), 2)
}
