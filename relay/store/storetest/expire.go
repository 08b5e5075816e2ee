package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// testExpireParked checks that ExpireParked deletes the parked events
// received before the cutoff, and only those: not younger parked events,
// not routed ones, not one replayed out of parking. Time is the cutoff
// passed in, an hour either side of now, so no test waits.
func testExpireParked(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	parked := acceptN(t, s, 3)
	routed := acceptN(t, s, 1, destA)
	if _, err := s.ReplayParked(ctx, parked[2], []string{destB}); err != nil {
		t.Fatalf("ReplayParked: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 2)

	n, err := s.ExpireParked(ctx, time.Now().Add(-long))
	if err != nil || n != 0 {
		t.Fatalf("ExpireParked(an hour ago) = %d, %v; want 0, nil", n, err)
	}
	wantIDs(t, "ListParked before expiry", eventIDs(listParked(t, s, 0)), parked[:2])

	n, err = s.ExpireParked(ctx, time.Now().Add(long))
	if err != nil || n != 2 {
		t.Fatalf("ExpireParked(in an hour) = %d, %v; want 2, nil", n, err)
	}
	wantIDs(t, "ListParked after expiry", eventIDs(listParked(t, s, 0)), nil)
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 0)
	for _, id := range parked[:2] {
		_, err := s.Event(ctx, id)
		wantErr(t, "Event of an expired parked event", err, store.ErrNotFound)
	}
	for _, id := range []string{routed[0], parked[2]} {
		mustEvent(t, s, id)
	}
	if n, err := s.ExpireParked(ctx, time.Now().Add(long)); err != nil || n != 0 {
		t.Fatalf("second ExpireParked = %d, %v; want 0, nil", n, err)
	}
	// Parking goes on as before after an expiry.
	again := acceptN(t, s, 1)
	wantIDs(t, "ListParked after a new park", eventIDs(listParked(t, s, 0)), again)
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 1)
}

// testExpireParkedMany checks that expiry goes past one call's batch.
func testExpireParkedMany(t *testing.T, open Opener) {
	s := openStore(t, open)
	const n = 1200 // more than either store deletes in one transaction or script
	acceptN(t, s, n)
	got, err := s.ExpireParked(context.Background(), time.Now().Add(long))
	if err != nil || got != n {
		t.Fatalf("ExpireParked = %d, %v; want %d", got, err, n)
	}
	wantDepths(t, s, nil, nil, 0)
}
