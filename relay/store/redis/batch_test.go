package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
)

// One script call decides each of its events as if it were accepted alone,
// in order: a claim taken earlier in the call makes a later event a
// duplicate, and a retry of an event written earlier in the call reports
// that write.
func TestAcceptBatchDecidesEachEvent(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ctx := context.Background()
	claim := store.Dedupe{Key: "1001:same-mid", TTL: time.Hour}
	retried := event(2)
	retried.ID = store.NewID("evt_")

	type input struct {
		ev    store.Event
		dests []string
		dd    store.Dedupe
	}
	inputs := []input{
		{event(1), []string{"alpha", "beta"}, claim},
		{event(1), []string{"alpha", "beta"}, claim},      // same key: duplicate of [0]
		{retried, []string{"alpha"}, store.Dedupe{}},      // no dedupe
		{retried, []string{"alpha"}, store.Dedupe{}},      // its retry: written once
		{event(3), nil, store.Dedupe{Key: "1001:parked"}}, // parked
		{event(4), []string{"beta"}, store.Dedupe{Key: "1001:other", TTL: time.Hour}},
	}
	batch := make([]*acceptReq, len(inputs))
	for i, in := range inputs {
		if in.ev.ID == "" {
			in.ev.ID = store.NewID("evt_")
		}
		r, err := newAcceptReq(ctx, in.ev, in.dests, in.dd)
		if err != nil {
			t.Fatal(err)
		}
		batch[i] = r
	}
	s.parts[0].accepts.run(batch)

	want := []store.AcceptResult{
		{EventID: batch[0].id, Deliveries: 2},
		{EventID: batch[0].id, Duplicate: true},
		{EventID: retried.ID, Deliveries: 1},
		{EventID: retried.ID, Deliveries: 1},
		{EventID: batch[4].id},
		{EventID: batch[5].id, Deliveries: 1},
	}
	for i, r := range batch {
		if r.err != nil || r.res != want[i] {
			t.Errorf("event %d: %+v, %v; want %+v", i, r.res, r.err, want[i])
		}
	}
	d, err := s.Depths(ctx)
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	if d.Queued["alpha"] != 2 || d.Queued["beta"] != 2 || d.Parked != 1 {
		t.Fatalf("Depths = %+v, want alpha 2, beta 2, parked 1", d)
	}
	for _, dest := range []string{"alpha", "beta"} {
		if ds := leaseN(t, s, dest, 10, time.Hour); len(ds) != 2 {
			t.Errorf("Lease(%s) = %d deliveries, want 2", dest, len(ds))
		}
	}
	rec, err := s.Event(ctx, batch[0].id)
	if err != nil || len(rec.Deliveries) != 2 || string(rec.Event.Body) != string(inputs[0].ev.Body) {
		t.Fatalf("Event(%s) = %+v, %v", batch[0].id, rec, err)
	}
	for _, dl := range rec.Deliveries {
		if dl.State != store.StatePending || dl.CreatedAt.IsZero() || dl.EventID != batch[0].id {
			t.Errorf("delivery %+v, want pending with a creation time", dl.Delivery)
		}
	}
}

// Many concurrent Accepts, sharing calls, still give each dedupe key to
// exactly one event, and every other caller learns that event's id.
func TestConcurrentAcceptsOneWinnerPerKey(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	const keys, callers = 40, 5
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners = map[string]string{}
		results []struct{ key, id string }
	)
	for k := range keys {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("1001:mid-%d", k)
				res, err := s.Accept(context.Background(), event(k), []string{"alpha"}, store.Dedupe{Key: key, TTL: time.Hour})
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if !res.Duplicate {
					if w, ok := winners[key]; ok {
						t.Errorf("key %s accepted twice: %s and %s", key, w, res.EventID)
					}
					winners[key] = res.EventID
				}
				results = append(results, struct{ key, id string }{key, res.EventID})
			}()
		}
	}
	wg.Wait()
	if len(winners) != keys {
		t.Fatalf("%d keys accepted, want %d", len(winners), keys)
	}
	for _, r := range results {
		if r.id != winners[r.key] {
			t.Errorf("key %s answered with %s, want the winner %s", r.key, r.id, winners[r.key])
		}
	}
	d, err := s.Depths(context.Background())
	if err != nil || d.Queued["alpha"] != keys {
		t.Fatalf("Depths = %+v, %v; want %d queued for alpha", d, err, keys)
	}
}

// A caller whose context ends while its Accept waits for a call gets the
// context's error, and the calls that follow still answer everyone else.
func TestAcceptCanceledWhileWaiting(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Accept(ctx, event(1), []string{"alpha"}, store.Dedupe{}); err == nil {
		t.Fatal("Accept with a canceled context succeeded")
	}
	res := accept(t, s, event(2), []string{"alpha"}, store.Dedupe{})
	if res.Deliveries != 1 {
		t.Fatalf("Accept after a canceled one = %+v", res)
	}
	// The canceled Accept was never sent: only the second one is queued.
	if d, err := s.Depths(context.Background()); err != nil || d.Queued["alpha"] != 1 {
		t.Fatalf("Depths = %+v, %v; want 1 queued for alpha", d, err)
	}
}
