package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

func testLeaseOrderAndLimit(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := acceptN(t, s, 5, destA)

	first := mustLease(t, s, destA, 3, long)
	wantIDs(t, "first Lease(3)", eventIDsOf(first), ids[:3])
	rest := mustLease(t, s, destA, 10, long)
	wantIDs(t, "second Lease(10)", eventIDsOf(rest), ids[3:])
	leaseNone(t, s, destA)
	leaseNone(t, s, destB)

	// Order by due time, not by acceptance: reschedule the first three into
	// the past in a shuffled order, and the last two far into the future.
	now := time.Now()
	past := []time.Duration{-1 * time.Second, -3 * time.Second, -2 * time.Second}
	for i, d := range first {
		if err := Retry(ctx, s, d, attemptFor(d, 503, ""), now.Add(past[i])); err != nil {
			t.Fatalf("Retry: %v", err)
		}
	}
	for _, d := range rest {
		if err := Retry(ctx, s, d, attemptFor(d, 503, ""), now.Add(long)); err != nil {
			t.Fatalf("Retry: %v", err)
		}
	}
	got := mustLease(t, s, destA, 10, long)
	wantIDs(t, "Lease after Retry", eventIDsOf(got), []string{ids[1], ids[2], ids[0]})
}

func testLeaseFillsEvent(t *testing.T, open Opener) {
	s := openStore(t, open)
	ev := newEvent("1001", SeedBody(3))
	ev.DedupeKey = "1001:fill"
	res := mustAccept(t, s, ev, []string{destA, destB}, store.Dedupe{Key: ev.DedupeKey, TTL: long})

	d := leaseOne(t, s, destA, long)
	if d.ID == "" || d.EventID != res.EventID || d.State != store.StatePending || d.Attempts != 0 {
		t.Fatalf("leased delivery = %+v, want pending, no attempts, event %s", d, res.EventID)
	}
	if d.CreatedAt.IsZero() || d.DueAt.IsZero() {
		t.Fatalf("leased delivery has zero CreatedAt %v or DueAt %v", d.CreatedAt, d.DueAt)
	}
	if d.Event == nil {
		t.Fatal("leased delivery has no Event")
	}
	e := d.Event
	if e.ID != res.EventID || e.WebhookID != "1001" || e.ContentType != ev.ContentType || e.DedupeKey != ev.DedupeKey {
		t.Fatalf("leased Event = id %q webhook %q content type %q dedupe %q, want %q %q %q %q",
			e.ID, e.WebhookID, e.ContentType, e.DedupeKey, res.EventID, "1001", ev.ContentType, ev.DedupeKey)
	}
	wantBody(t, "leased Event", e.Body, ev.Body)
	wantIDs(t, "leased Event destinations", e.Destinations, []string{destA, destB})
}

func testLeaseHides(t *testing.T, open Opener) {
	s := openStore(t, open)
	ids := acceptN(t, s, 2, destA)
	d1 := leaseOne(t, s, destA, long)
	d2 := leaseOne(t, s, destA, long)
	wantIDs(t, "leased events", []string{d1.EventID, d2.EventID}, ids)
	leaseNone(t, s, destA)
	wantDepths(t, s, map[string]int{destA: 2}, nil, 0)
}

func testLeaseExpiry(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	acceptN(t, s, 1, destA)

	first := leaseOne(t, s, destA, 150*time.Millisecond)
	second := eventuallyLease(t, s, destA, long)
	if second.ID != first.ID {
		t.Fatalf("re-leased delivery %s, want %s", second.ID, first.ID)
	}
	if second.Lease == first.Lease {
		t.Fatal("a new lease reused the expired lease's token")
	}
	wantErr(t, "Complete with the expired lease", Complete(ctx, s, first, attemptFor(first, 200, "")), store.ErrLeaseLost)
	if err := Complete(ctx, s, second, attemptFor(second, 200, "")); err != nil {
		t.Fatalf("Complete with the new lease: %v", err)
	}
	leaseNone(t, s, destA)
}

func testLeaseConcurrent(t *testing.T, open Opener) {
	s := openStore(t, open)
	const events, workers = 40, 8
	acceptN(t, s, events, destA)
	leasers := make([]store.Store, workers)
	for i := range leasers {
		leasers[i] = s
	}
	LeaseAllOnce(t, leasers, destA, 3, events)
}

// LeaseAllOnce runs one goroutine per leaser, each leasing batches of n from
// dest with a long lease until nothing is due, and fails the test unless
// together they leased want distinct deliveries, each exactly once. Backends
// use it with several handles on one storage (several processes).
func LeaseAllOnce(t testing.TB, leasers []store.Store, dest string, n, want int) {
	t.Helper()
	var (
		mu     sync.Mutex
		leased = map[string]int{}
		wg     sync.WaitGroup
	)
	for _, s := range leasers {
		wg.Go(func() {
			for {
				ds, err := s.Lease(context.Background(), dest, n, long)
				if err != nil {
					t.Errorf("Lease: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					leased[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(leased) != want {
		t.Fatalf("leased %d distinct deliveries, want %d", len(leased), want)
	}
	for id, c := range leased {
		if c != 1 {
			t.Fatalf("delivery %s leased %d times under live leases", id, c)
		}
	}
}

// A lease that ran out is lost even when nobody took the delivery over.
func testExpiredLease(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	acceptN(t, s, 1, destA)

	const lease = 100 * time.Millisecond
	for _, outcome := range []struct {
		name string
		call func(store.Delivery) error
	}{
		{"Complete", func(d store.Delivery) error { return Complete(ctx, s, d, attemptFor(d, 200, "")) }},
		{"Retry", func(d store.Delivery) error { return Retry(ctx, s, d, attemptFor(d, 500, ""), time.Now()) }},
		{"DeadLetter", func(d store.Delivery) error { return DeadLetter(ctx, s, d, attemptFor(d, 500, "")) }},
		{"ExtendLease", func(d store.Delivery) error { return s.ExtendLease(ctx, d, long) }},
		{"Release", func(d store.Delivery) error { return s.Release(ctx, d, time.Now()) }},
	} {
		d := eventuallyLease(t, s, destA, lease)
		time.Sleep(3 * lease)
		wantErr(t, outcome.name+" after the lease ran out", outcome.call(d), store.ErrLeaseLost)
	}
	wantDepths(t, s, map[string]int{destA: 1}, nil, 0)
}

func testStaleLease(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA}, store.Dedupe{})

	stale := leaseOne(t, s, destA, 150*time.Millisecond)
	live := eventuallyLease(t, s, destA, long)
	foreign := live
	foreign.Lease = "not-a-lease-token"
	noToken := live
	noToken.Lease = ""

	for name, d := range map[string]store.Delivery{"stale": stale, "foreign": foreign, "empty": noToken} {
		a := attemptFor(d, 500, "x")
		wantErr(t, name+" Complete", Complete(ctx, s, d, a), store.ErrLeaseLost)
		wantErr(t, name+" Retry", Retry(ctx, s, d, a, time.Now()), store.ErrLeaseLost)
		wantErr(t, name+" DeadLetter", DeadLetter(ctx, s, d, a), store.ErrLeaseLost)
		wantErr(t, name+" ExtendLease", s.ExtendLease(ctx, d, long), store.ErrLeaseLost)
		wantErr(t, name+" Release", s.Release(ctx, d, time.Now()), store.ErrLeaseLost)
	}

	// None of the refused calls wrote anything.
	got := deliveryOf(t, mustEvent(t, s, res.EventID), live.ID)
	if got.State != store.StatePending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
		t.Fatalf("after refused calls delivery = %+v with %d attempts logged, want untouched",
			got.Delivery, len(got.AttemptLog))
	}
	wantDepths(t, s, map[string]int{destA: 1}, nil, 0)
	leaseNone(t, s, destA)

	if err := Complete(ctx, s, live, attemptFor(live, 200, "")); err != nil {
		t.Fatalf("Complete with the live lease: %v", err)
	}
	// The lease ends with the delivery: a repeated outcome is refused.
	wantErr(t, "second Complete", Complete(ctx, s, live, attemptFor(live, 200, "")), store.ErrLeaseLost)
	wantErr(t, "Retry after Complete", Retry(ctx, s, live, attemptFor(live, 500, ""), time.Now()), store.ErrLeaseLost)
	wantErr(t, "DeadLetter after Complete", DeadLetter(ctx, s, live, attemptFor(live, 500, "")), store.ErrLeaseLost)
	wantDepths(t, s, nil, nil, 0)
}

func testRetry(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := acceptN(t, s, 2, destA)

	d0 := leaseOne(t, s, destA, long)
	due := time.Now().Add(long).Truncate(time.Millisecond)
	a := attemptFor(d0, 503, "503 Service Unavailable")
	if err := Retry(ctx, s, d0, a, due); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	got := deliveryOf(t, mustEvent(t, s, ids[0]), d0.ID)
	if got.State != store.StatePending || got.Attempts != 1 || got.LastStatus != 503 || got.LastError != a.Error {
		t.Fatalf("after Retry delivery = %+v, want pending, 1 attempt, last 503 %q", got.Delivery, a.Error)
	}
	if diff := got.DueAt.Sub(due).Abs(); diff > time.Millisecond {
		t.Fatalf("after Retry DueAt = %v, want %v", got.DueAt, due)
	}
	if len(got.AttemptLog) != 1 {
		t.Fatalf("after Retry %d attempts logged, want 1", len(got.AttemptLog))
	}
	wantAttempt(t, got.AttemptLog[0], a)
	wantDepths(t, s, map[string]int{destA: 2}, nil, 0)

	// d0 is not due for an hour; only the other delivery is leasable.
	d1 := leaseOne(t, s, destA, long)
	if d1.EventID != ids[1] {
		t.Fatalf("leased event %s, want %s (the retried one is not due)", d1.EventID, ids[1])
	}
	leaseNone(t, s, destA)

	if err := Retry(ctx, s, d1, attemptFor(d1, 0, "connection refused"), time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	again := eventuallyLease(t, s, destA, long)
	if again.ID != d1.ID || again.Attempts != 1 {
		t.Fatalf("leased %s with %d attempts, want %s with 1", again.ID, again.Attempts, d1.ID)
	}
	wantBody(t, "re-leased event", again.Event.Body, SeedBody(1))
	leaseNone(t, s, destA)
}

func testExtendLease(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	acceptN(t, s, 1, destA)

	const short = time.Second
	d := leaseOne(t, s, destA, short)
	if err := s.ExtendLease(ctx, d, long); err != nil {
		t.Fatalf("ExtendLease: %v", err)
	}
	time.Sleep(short + 300*time.Millisecond)
	leaseNone(t, s, destA)
	if err := s.ExtendLease(ctx, d, long); err != nil {
		t.Fatalf("second ExtendLease: %v", err)
	}
	if err := Complete(ctx, s, d, attemptFor(d, 200, "")); err != nil {
		t.Fatalf("Complete after ExtendLease: %v", err)
	}
}

func testRelease(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := acceptN(t, s, 1, destA)

	d := leaseOne(t, s, destA, long)
	if err := s.Release(ctx, d, time.Now()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantErr(t, "Complete after Release", Complete(ctx, s, d, attemptFor(d, 200, "")), store.ErrLeaseLost)
	again := leaseOne(t, s, destA, long)
	if again.ID != d.ID || again.Attempts != 0 {
		t.Fatalf("after Release leased %s with %d attempts, want %s with 0", again.ID, again.Attempts, d.ID)
	}
	if err := s.Release(ctx, again, time.Now().Add(long)); err != nil {
		t.Fatalf("Release into the future: %v", err)
	}
	leaseNone(t, s, destA)

	got := deliveryOf(t, mustEvent(t, s, ids[0]), d.ID)
	if got.State != store.StatePending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
		t.Fatalf("after Release delivery = %+v with %d attempts logged, want pending, none",
			got.Delivery, len(got.AttemptLog))
	}
	wantDepths(t, s, map[string]int{destA: 1}, nil, 0)
}

// attemptFor builds the attempt a worker records for its next try of d.
func attemptFor(d store.Delivery, status int, errText string) store.Attempt {
	a := attempt(status, errText)
	a.N = d.Attempts + 1
	return a
}

func wantAttempt(t testing.TB, got, want store.Attempt) {
	t.Helper()
	if got.N != want.N || !got.At.Equal(want.At) || got.Duration != want.Duration ||
		got.Status != want.Status || got.Error != want.Error || got.Response != want.Response {
		t.Fatalf("attempt = %+v, want %+v", got, want)
	}
}

// testSettle settles one delivery of each kind without waiting: done is
// called once with what SettleWait returns, and the outcome is then as
// durable and visible as a waiting caller's. A settlement into a state
// that is not an outcome is refused and writes nothing.
func testSettle(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := acceptN(t, s, 4, destA)
	ds := mustLease(t, s, destA, 4, long)
	due := time.Now().Add(long).Truncate(time.Millisecond)
	outcomes := []store.Settlement{
		{State: store.StateDelivered, Attempt: attemptFor(ds[0], 200, "")},
		{State: store.StatePending, Attempt: attemptFor(ds[1], 503, "503"), Due: due},
		{State: store.StateDead, Attempt: attemptFor(ds[2], 410, "410 Gone")},
	}
	for i, o := range outcomes {
		if err := answer(t, func(done func(error)) { s.Settle(ctx, ds[i], o, done) }); err != nil {
			t.Fatalf("Settle %s: %v", o.State, err)
		}
	}
	err := answer(t, func(done func(error)) {
		s.Settle(ctx, ds[3], store.Settlement{State: store.StateDiscarded, Attempt: attemptFor(ds[3], 200, "")}, done)
	})
	if err == nil {
		t.Fatal("Settle into discarded: no error")
	}
	for i, id := range ids[:3] {
		got := deliveryOf(t, mustEvent(t, s, id), ds[i].ID)
		if got.State != outcomes[i].State || got.Attempts != 1 || len(got.AttemptLog) != 1 {
			t.Fatalf("delivery %d = %+v with %d attempts logged, want %s after one attempt", i, got.Delivery, len(got.AttemptLog), outcomes[i].State)
		}
		wantAttempt(t, got.AttemptLog[0], outcomes[i].Attempt)
	}
	if got := deliveryOf(t, mustEvent(t, s, ids[3]), ds[3].ID); got.State != store.StatePending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
		t.Fatalf("after a refused Settle delivery = %+v with %d attempts logged, want untouched", got.Delivery, len(got.AttemptLog))
	}
	// The lease ended with the outcome, as it does for a caller that waits.
	err = answer(t, func(done func(error)) { s.Settle(ctx, ds[0], outcomes[0], done) })
	wantErr(t, "Settle after the outcome", err, store.ErrLeaseLost)
	if err := Complete(ctx, s, ds[3], attemptFor(ds[3], 200, "")); err != nil {
		t.Fatalf("SettleWait with the lease a refused Settle left: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1}, map[string]int{destA: 1}, 0)
}

// answer runs a Settle and returns the error its done gets,
// failing the test when done is not called once.
func answer(t testing.TB, call func(done func(error))) error {
	t.Helper()
	got := make(chan error, 2)
	call(func(err error) { got <- err })
	var err error
	select {
	case err = <-got:
	case <-time.After(waitFor):
		t.Fatalf("done was not called within %v", waitFor)
	}
	select {
	case again := <-got:
		t.Fatalf("done was called twice (%v, then %v)", err, again)
	case <-time.After(10 * time.Millisecond):
	}
	return err
}
