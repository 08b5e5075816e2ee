package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

const destC = "gamma"

func testDeadLetter(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA, destB}, store.Dedupe{})

	dA := leaseOne(t, s, destA, long)
	if err := DeadLetter(ctx, s, dA, attemptFor(dA, 500, "500 Internal Server Error")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	leaseNone(t, s, destA)
	wantDepths(t, s, map[string]int{destB: 1}, map[string]int{destA: 1}, 0)

	// A delivery retried once and then given up on a connection error.
	dB := leaseOne(t, s, destB, long)
	if err := Retry(ctx, s, dB, attemptFor(dB, 502, "502 Bad Gateway"), time.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	dB = eventuallyLease(t, s, destB, long)
	if err := DeadLetter(ctx, s, dB, attemptFor(dB, 0, "dial tcp: connection refused")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	wantDepths(t, s, nil, map[string]int{destA: 1, destB: 1}, 0)

	items := listDLQ(t, s, "", 0)
	wantIDs(t, "ListDLQ", deliveryIDs(items), []string{dA.ID, dB.ID})
	want := []struct {
		dest     string
		attempts int
		status   int
		errText  string
	}{
		{destA, 1, 500, "500 Internal Server Error"},
		{destB, 2, 0, "dial tcp: connection refused"},
	}
	for i, w := range want {
		got := items[i]
		if got.Destination != w.dest || got.EventID != res.EventID || got.State != store.StateDead ||
			got.Attempts != w.attempts || got.LastStatus != w.status || got.LastError != w.errText {
			t.Fatalf("DLQ item %d = %+v, want dest %s, dead, %d attempts, last %d %q",
				i, got, w.dest, w.attempts, w.status, w.errText)
		}
	}

	rec := mustEvent(t, s, res.EventID)
	for _, id := range []string{dA.ID, dB.ID} {
		if d := deliveryOf(t, rec, id); d.State != store.StateDead {
			t.Fatalf("Event shows delivery %s as %s, want dead", id, d.State)
		}
	}
	if n := len(deliveryOf(t, rec, dB.ID).AttemptLog); n != 2 {
		t.Fatalf("dead delivery %s has %d attempts logged, want 2", dB.ID, n)
	}
}

// listDLQ pages through ListDLQ and returns every item in order.
func listDLQ(t testing.TB, s store.Store, dest string, limit int) []store.Delivery {
	t.Helper()
	return collect(t, "ListDLQ("+dest+")", limit, func(p store.Page) ([]store.Delivery, string, error) {
		return s.ListDLQ(context.Background(), dest, p)
	})
}

// collect follows cursors until the last page.
func collect[T any](t testing.TB, what string, limit int, list func(store.Page) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	p := store.Page{Limit: limit}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: more than 1000 pages; the cursor does not advance", what)
		}
		items, next, err := list(p)
		if err != nil {
			t.Fatalf("%s page %d: %v", what, pages, err)
		}
		max := limit
		if max <= 0 {
			max = store.DefaultPageLimit
		}
		if len(items) > max {
			t.Fatalf("%s page %d: %d items, limit %d", what, pages, len(items), max)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) == 0 {
			t.Fatalf("%s page %d: empty page with a next cursor", what, pages)
		}
		p.Cursor = next
	}
}

func testListDLQPages(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	// Dead-lettered in this order, interleaving the two destinations.
	order := []string{destA, destA, destB, destA, destA, destB, destA, destB}
	byDest := map[string][]string{}
	var all []string
	for i, dest := range order {
		mustAccept(t, s, newEvent("1001", SeedBody(i)), []string{dest}, store.Dedupe{})
		d := leaseOne(t, s, dest, long)
		if err := DeadLetter(ctx, s, d, attemptFor(d, 500, "")); err != nil {
			t.Fatalf("DeadLetter: %v", err)
		}
		byDest[dest] = append(byDest[dest], d.ID)
		all = append(all, d.ID)
	}

	tests := []struct {
		dest  string
		limit int
		want  []string
	}{
		{destA, 2, byDest[destA]},
		{destA, 5, byDest[destA]},
		{destA, 0, byDest[destA]},
		{destB, 1, byDest[destB]},
		{destB, 3, byDest[destB]},
		{"", 3, all},
		{"", 1, all},
		{"", 0, all},
		{"nowhere", 2, nil},
	}
	for _, tc := range tests {
		got := listDLQ(t, s, tc.dest, tc.limit)
		wantIDs(t, "ListDLQ("+tc.dest+")", deliveryIDs(got), tc.want)
	}

	// The first page of a filtered list holds the oldest entries.
	items, next, err := s.ListDLQ(ctx, destA, store.Page{Limit: 2})
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	wantIDs(t, "first page", deliveryIDs(items), byDest[destA][:2])
	if next == "" {
		t.Fatal("first of several pages has no next cursor")
	}
	wantDepths(t, s, nil, map[string]int{destA: 5, destB: 3}, 0)
}

func testReplayDLQ(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := acceptN(t, s, 1, destA)

	d := leaseOne(t, s, destA, long)
	if err := Retry(ctx, s, d, attemptFor(d, 503, ""), time.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	d = eventuallyLease(t, s, destA, long)
	if err := DeadLetter(ctx, s, d, attemptFor(d, 503, "")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	// Let the clock move on so a reset CreatedAt differs from the original.
	time.Sleep(20 * time.Millisecond)
	replayedAt := time.Now().Truncate(time.Millisecond)
	if err := s.ReplayDLQ(ctx, d.ID); err != nil {
		t.Fatalf("ReplayDLQ: %v", err)
	}
	wantErr(t, "second ReplayDLQ", s.ReplayDLQ(ctx, d.ID), store.ErrNotFound)
	wantErr(t, "ReplayDLQ of an unknown id", s.ReplayDLQ(ctx, "dlv_unknown"), store.ErrNotFound)
	if items := listDLQ(t, s, "", 0); len(items) != 0 {
		t.Fatalf("ListDLQ after replay has %d items, want 0", len(items))
	}
	wantDepths(t, s, map[string]int{destA: 1}, nil, 0)

	got := deliveryOf(t, mustEvent(t, s, ids[0]), d.ID)
	if got.State != store.StatePending || got.Attempts != 0 {
		t.Fatalf("after ReplayDLQ delivery = %+v, want pending with 0 attempts", got.Delivery)
	}
	if got.CreatedAt.Before(replayedAt) {
		t.Fatalf("after ReplayDLQ CreatedAt = %v, want reset to the replay time", got.CreatedAt)
	}
	again := leaseOne(t, s, destA, long)
	if again.ID != d.ID || again.Attempts != 0 {
		t.Fatalf("leased %s with %d attempts, want %s with 0", again.ID, again.Attempts, d.ID)
	}
	wantErr(t, "ReplayDLQ of a pending delivery", s.ReplayDLQ(ctx, d.ID), store.ErrNotFound)
	if err := Complete(ctx, s, again, attemptFor(again, 200, "")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantErr(t, "ReplayDLQ of a delivered delivery", s.ReplayDLQ(ctx, d.ID), store.ErrNotFound)
	wantDepths(t, s, nil, nil, 0)
}

// Delivery reads one delivery by id in every state: queued and never
// leased, dead, and unknown.
func testDelivery(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	res := mustAccept(t, s, newEvent("1201", SeedBody(1)), []string{destA, destB}, store.Dedupe{})
	rec := mustEvent(t, s, res.EventID)
	if len(rec.Deliveries) != 2 {
		t.Fatalf("event has %d deliveries, want 2", len(rec.Deliveries))
	}
	for i, dest := range []string{destA, destB} {
		id := rec.Deliveries[i].ID
		d, err := s.Delivery(ctx, id)
		if err != nil {
			t.Fatalf("Delivery(%s) before any lease: %v", id, err)
		}
		if d.ID != id || d.EventID != res.EventID || d.Destination != dest || d.State != store.StatePending || d.Attempts != 0 {
			t.Fatalf("Delivery(%s) = %+v, want pending to %s of event %s", id, d, dest, res.EventID)
		}
	}
	dA := leaseOne(t, s, destA, long)
	if err := DeadLetter(ctx, s, dA, attemptFor(dA, 500, "boom")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	d, err := s.Delivery(ctx, dA.ID)
	if err != nil {
		t.Fatalf("Delivery(%s) after DeadLetter: %v", dA.ID, err)
	}
	if d.State != store.StateDead || d.Destination != destA || d.Attempts != 1 || d.LastStatus != 500 || d.LastError != "boom" {
		t.Fatalf("Delivery(%s) = %+v, want dead to %s after 1 attempt, last 500 boom", dA.ID, d, destA)
	}
	for _, id := range []string{"dlv_nope", "dlv_" + res.EventID[4:] + "_9", ""} {
		if _, err := s.Delivery(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Delivery(%q) = %v, want ErrNotFound", id, err)
		}
	}
}
