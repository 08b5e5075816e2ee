package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// acceptLease accepts n events for dest and leases their deliveries.
func acceptLease(t testing.TB, s *Store, dest string, n int) []store.Delivery {
	t.Helper()
	for i := range n {
		accept(t, s, event(i), []string{dest}, store.Dedupe{})
	}
	ds := leaseN(t, s, dest, n, time.Hour)
	if len(ds) != n {
		t.Fatalf("leased %d deliveries, want %d", len(ds), n)
	}
	return ds
}

// newOutcome builds an outcome request as Complete, Retry and DeadLetter
// do, without submitting it.
func newOutcome(t testing.TB, s *Store, op, kind string, d store.Delivery, due time.Time) *outcomeReq {
	t.Helper()
	r, err := s.outcomeReq(newCall(context.Background(), op, d.ID), kind, d, ok200(), due)
	if err != nil {
		t.Fatalf("outcome request for %s: %v", d.ID, err)
	}
	return r
}

// deliveryState reads one delivery's record from its event.
func deliveryState(t testing.TB, s *Store, d store.Delivery) store.DeliveryRecord {
	t.Helper()
	rec, err := s.Event(context.Background(), d.EventID)
	if err != nil {
		t.Fatalf("Event(%s): %v", d.EventID, err)
	}
	for _, dr := range rec.Deliveries {
		if dr.ID == d.ID {
			return dr
		}
	}
	t.Fatalf("event %s has no delivery %s", d.EventID, d.ID)
	return store.DeliveryRecord{}
}

// One outcome call decides each of its outcomes as if it were alone, in
// order: a lost lease, a missing delivery and a second outcome for a
// delivery finished earlier in the call each get their own error, and the
// others are recorded with exact depths.
func TestOutcomeBatchDecidesEachOutcome(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ctx := context.Background()
	ds := acceptLease(t, s, "alpha", 6)
	dead := acceptLease(t, s, "beta", 1)[0]
	stale := ds[5]
	stale.Lease = "not-a-lease-token"
	missing := ds[0]
	missing.ID = "dlv_missing"
	due := time.Now().Add(time.Hour)

	batch := []*outcomeReq{
		newOutcome(t, s, "complete", kindComplete, ds[0], time.Time{}),
		newOutcome(t, s, "complete", kindComplete, ds[0], time.Time{}), // again: lost
		newOutcome(t, s, "complete", kindComplete, stale, time.Time{}),
		newOutcome(t, s, "complete", kindComplete, missing, time.Time{}),
		newOutcome(t, s, "retry", kindRetry, ds[1], due),
		newOutcome(t, s, "complete", kindComplete, ds[1], time.Time{}), // retried: lost
		newOutcome(t, s, "dead-letter", kindDeadLetter, dead, time.Time{}),
		newOutcome(t, s, "complete", kindComplete, ds[2], time.Time{}),
		newOutcome(t, s, "complete", kindComplete, ds[3], time.Time{}),
	}
	want := []error{nil, store.ErrLeaseLost, store.ErrLeaseLost, store.ErrNotFound, nil,
		store.ErrLeaseLost, nil, nil, nil}
	s.parts[0].outcomes.run(batch)
	for i, r := range batch {
		if !r.answered() {
			t.Fatalf("outcome %d not answered", i)
		}
		if want[i] == nil && r.err != nil || !errors.Is(r.err, want[i]) {
			t.Errorf("outcome %d (%s %s): %v, want %v", i, r.op, r.id, r.err, want[i])
		}
	}

	for _, d := range []store.Delivery{ds[0], ds[2], ds[3]} {
		if got := deliveryState(t, s, d); got.State != store.StateDelivered || got.Attempts != 1 || len(got.AttemptLog) != 1 {
			t.Errorf("%s = %+v with %d logged, want delivered once", d.ID, got.Delivery, len(got.AttemptLog))
		}
	}
	if got := deliveryState(t, s, ds[1]); got.State != store.StatePending || got.Attempts != 1 ||
		len(got.AttemptLog) != 1 || got.DueAt.Sub(due).Abs() > time.Millisecond {
		t.Errorf("retried %s = %+v, want pending, 1 attempt, due %v", ds[1].ID, got.Delivery, due)
	}
	if got := deliveryState(t, s, dead); got.State != store.StateDead || len(got.AttemptLog) != 1 {
		t.Errorf("dead-lettered %s = %+v, want dead", dead.ID, got.Delivery)
	}
	for _, d := range ds[4:] {
		if got := deliveryState(t, s, d); got.State != store.StatePending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
			t.Errorf("untouched %s = %+v, want pending with no attempt", d.ID, got.Delivery)
		}
	}
	depths, err := s.Depths(ctx)
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	if depths.Queued["alpha"] != 3 || depths.Queued["beta"] != 0 || depths.Dead["beta"] != 1 {
		t.Fatalf("Depths = %+v, want alpha 3 queued, beta 1 dead", depths)
	}
	dlq, _, err := s.ListDLQ(ctx, "beta", store.Page{})
	if err != nil || len(dlq) != 1 || dlq[0].ID != dead.ID {
		t.Fatalf("ListDLQ(beta) = %v, %v; want %s", dlq, err, dead.ID)
	}
	// The completed events are retired: they expire after the retention.
	raw := rawClient(t, srv.URL())
	for _, d := range []store.Delivery{ds[0], ds[2], ds[3]} {
		if ttl := raw.PTTL(ctx, s.prefix+"ev:"+d.EventID).Val(); ttl <= 0 {
			t.Errorf("completed event %s has TTL %v, want the retention", d.EventID, ttl)
		}
	}
}

// Many concurrent Completes share calls, and each caller still gets its own
// answer: those with a lost lease or a missing delivery their error, the
// others success.
//
// With async the outcomes go through Settle without waiting: each done is
// called once, with the error SettleWait would return.
func TestConcurrentCompletesOwnErrors(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "SettleWait", true: "Settle"}[async], func(t *testing.T) {
			testConcurrentCompletes(t, async)
		})
	}
}

func testConcurrentCompletes(t *testing.T, async bool) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ctx := context.Background()
	const n = 120
	ds := acceptLease(t, s, "alpha", n)
	want := make([]error, n)
	for i := range ds {
		switch i % 4 {
		case 1:
			ds[i].Lease += "-lost"
			want[i] = store.ErrLeaseLost
		case 2:
			ds[i].ID += "-missing"
			want[i] = store.ErrNotFound
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	var answers atomic.Int32
	for i, d := range ds {
		if async {
			wg.Add(1)
			s.Settle(ctx, d, storetest.Delivered(ok200()), func(err error) {
				errs[i] = err
				answers.Add(1)
				wg.Done()
			})
			continue
		}
		wg.Go(func() { errs[i] = storetest.Complete(ctx, s, d, ok200()) })
	}
	wg.Wait()
	if async && answers.Load() != n {
		t.Fatalf("done called %d times for %d outcomes", answers.Load(), n)
	}
	for i, err := range errs {
		if want[i] == nil && err != nil || !errors.Is(err, want[i]) {
			t.Errorf("Complete %d (%s): %v, want %v", i, ds[i].ID, err, want[i])
		}
	}
	if d, err := s.Depths(ctx); err != nil || d.Queued["alpha"] != n/2 {
		t.Fatalf("Depths = %+v, %v; want %d queued for alpha", d, err, n/2)
	}
	for i, d := range ds {
		if want[i] == nil {
			if got := deliveryState(t, s, d); got.State != store.StateDelivered || len(got.AttemptLog) != 1 {
				t.Errorf("%s = %+v, want delivered", d.ID, got.Delivery)
			}
		}
	}
}

// A Complete whose context ends, before it is sent or while it waits for
// the calls in flight, gets its context's error and is never sent; the
// calls that follow still answer everyone else.
func TestCompleteCanceled(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ds := acceptLease(t, s, "alpha", 3)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := storetest.Complete(ctx, s, ds[0], ok200()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Complete with a canceled context: %v, want context.Canceled", err)
	}

	// Every call slot busy: the next Complete waits in the queue.
	q := &s.parts[0].outcomes
	q.mu.Lock()
	q.calls = q.maxCalls
	q.mu.Unlock()
	ctx, cancel = context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- storetest.Complete(ctx, s, ds[1], ok200()) }()
	eventually(t, "Complete queued", func() error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(q.waiting) != 1 {
			return errors.New("not queued yet")
		}
		return nil
	})
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("Complete canceled while waiting: %v, want context.Canceled", err)
	}
	// A slot frees up: the canceled request is dropped, not sent.
	q.drain(nil)
	q.mu.Lock()
	q.calls = 0
	q.mu.Unlock()

	if err := storetest.Complete(context.Background(), s, ds[2], ok200()); err != nil {
		t.Fatalf("Complete after canceled ones: %v", err)
	}
	for i, d := range ds {
		got := deliveryState(t, s, d)
		if i < 2 && (got.State != store.StatePending || len(got.AttemptLog) != 0) {
			t.Errorf("canceled %s = %+v with %d logged, want untouched", d.ID, got.Delivery, len(got.AttemptLog))
		}
		if i == 2 && got.State != store.StateDelivered {
			t.Errorf("%s = %+v, want delivered", d.ID, got.Delivery)
		}
	}
	if d, err := s.Depths(context.Background()); err != nil || d.Queued["alpha"] != 2 {
		t.Fatalf("Depths = %+v, %v; want 2 queued for alpha", d, err)
	}
}

// Redis killed while Completes stream in: the calls that cannot reach it
// fail with ErrUnavailable, and after a restart everything acknowledged
// before is still recorded, every delivery is whole (delivered with its
// attempt, or pending without one) and the depth counts exactly the pending.
func TestRedisKilledMidOutcomes(t *testing.T) {
	// appendfsync always: a kill loses nothing acknowledged.
	srv := testredis.StartWith(t, "--appendfsync", "always")
	if srv.External() {
		t.Skip("kills the server")
	}
	short := func(o *Options) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		o.PoolSize = 8
	}
	s := openStore(t, srv.URL(), uniquePrefix(t), short)
	ctx := context.Background()
	const n, workers = 400, 8
	ds := acceptLease(t, s, "alpha", n)

	var (
		next, okCount atomic.Int64
		killed        atomic.Bool
		wg            sync.WaitGroup
	)
	errs := make([]error, n)
	afterKill := make([]bool, n) // sent after Kill returned
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				afterKill[i] = killed.Load()
				errs[i] = storetest.Complete(ctx, s, ds[i], ok200())
				if errs[i] == nil {
					okCount.Add(1)
				}
			}
		})
	}
	eventually(t, "some Completes recorded", func() error {
		if okCount.Load() < n/4 {
			return errors.New("not yet")
		}
		return nil
	})
	srv.Kill()
	killed.Store(true)
	wg.Wait()

	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Complete %d with Redis down: %v, want ErrUnavailable", i, err)
			}
		} else if afterKill[i] {
			t.Errorf("Complete %d sent after the kill succeeded", i)
		}
	}
	if failed == 0 {
		t.Fatal("no Complete failed: the kill came after all of them")
	}

	srv.Restart()
	eventually(t, "Ping after restart", func() error { return s.Ping(ctx) })
	pending := 0
	for i, d := range ds {
		got := deliveryState(t, s, d)
		switch {
		case got.State == store.StateDelivered && got.Attempts == 1 && len(got.AttemptLog) == 1:
		case errs[i] == nil:
			t.Errorf("acknowledged %s = %+v with %d logged after the restart, want delivered", d.ID, got.Delivery, len(got.AttemptLog))
		case got.State == store.StatePending && got.Attempts == 0 && len(got.AttemptLog) == 0:
			pending++
		default:
			t.Errorf("%s = %+v with %d logged after the restart: half written", d.ID, got.Delivery, len(got.AttemptLog))
		}
	}
	if d, err := s.Depths(ctx); err != nil || d.Queued["alpha"] != pending {
		t.Fatalf("Depths = %+v, %v; want %d queued (the pending)", d, err, pending)
	}
	// The leases taken before the kill still hold: the rest completes.
	for i, d := range ds {
		if errs[i] != nil {
			if err := storetest.Complete(ctx, s, d, ok200()); err != nil && !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("Complete %s after the restart: %v", d.ID, err)
			}
		}
	}
	if d, err := s.Depths(ctx); err != nil || d.Queued["alpha"] != 0 {
		t.Fatalf("Depths = %+v, %v; want none queued", d, err)
	}
}
