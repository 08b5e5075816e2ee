package storetest

import (
	"context"
	"testing"

	"github.com/relaygw/relay/relay/store"
)

func listParked(t testing.TB, s store.Store, limit int) []store.Event {
	t.Helper()
	return collect(t, "ListParked", limit, func(p store.Page) ([]store.Event, string, error) {
		return s.ListParked(context.Background(), p)
	})
}

func eventIDs(evs []store.Event) []string {
	return ids(evs, func(e store.Event) string { return e.ID })
}

func testParked(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	parked := acceptN(t, s, 3)
	routed := acceptN(t, s, 1, destA)
	wantDepths(t, s, map[string]int{destA: 1}, nil, 3)

	n, err := s.ReplayParked(ctx, parked[1], []string{destA, destB})
	if err != nil {
		t.Fatalf("ReplayParked: %v", err)
	}
	if n != 2 {
		t.Fatalf("ReplayParked queued %d deliveries, want 2", n)
	}
	wantIDs(t, "ListParked after replay", eventIDs(listParked(t, s, 0)), []string{parked[0], parked[2]})
	wantDepths(t, s, map[string]int{destA: 2, destB: 1}, nil, 2)

	rec := mustEvent(t, s, parked[1])
	if rec.Event.Parked {
		t.Fatal("replayed event is still marked parked")
	}
	wantIDs(t, "replayed event destinations", rec.Event.Destinations, []string{destA, destB})
	if len(rec.Deliveries) != 2 {
		t.Fatalf("replayed event has %d deliveries, want 2", len(rec.Deliveries))
	}
	dB := leaseOne(t, s, destB, long)
	if dB.EventID != parked[1] {
		t.Fatalf("leased event %s on %s, want %s", dB.EventID, destB, parked[1])
	}
	wantBody(t, "replayed event", dB.Event.Body, SeedBody(1))
	got := mustLease(t, s, destA, 10, long)
	wantIDs(t, "leased on "+destA, eventIDsOf(got), []string{routed[0], parked[1]})

	tests := []struct {
		name string
		id   string
	}{
		{"replayed twice", parked[1]},
		{"routed event", routed[0]},
		{"unknown event", "evt_unknown"},
	}
	for _, tc := range tests {
		_, err := s.ReplayParked(ctx, tc.id, []string{destA})
		wantErr(t, "ReplayParked of "+tc.name, err, store.ErrNotFound)
	}

	// Still no route: the event stays parked.
	n, err = s.ReplayParked(ctx, parked[0], nil)
	if err != nil || n != 0 {
		t.Fatalf("ReplayParked with no destinations = %d, %v; want 0, nil", n, err)
	}
	wantIDs(t, "ListParked after an unrouted replay", eventIDs(listParked(t, s, 0)), []string{parked[0], parked[2]})
	if !mustEvent(t, s, parked[0]).Event.Parked {
		t.Fatal("event replayed with no destinations is no longer parked")
	}
	wantDepths(t, s, map[string]int{destA: 2, destB: 1}, nil, 2)
}

func testListParkedPages(t *testing.T, open Opener) {
	s := openStore(t, open)
	parked := acceptN(t, s, 5)
	acceptN(t, s, 2, destA)
	for _, limit := range []int{1, 2, 5, 7, 0} {
		got := listParked(t, s, limit)
		wantIDs(t, "ListParked", eventIDs(got), parked)
		for i, ev := range got {
			wantBody(t, "ListParked item", ev.Body, SeedBody(i))
			if !ev.Parked {
				t.Fatalf("ListParked item %s is not marked parked", ev.ID)
			}
		}
	}
}
