package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// Accept writes no delivery hash for an event with a store-made id: the
// delivery is implicit until its first lease. Every reader sees it as the
// pending delivery it is, and a never-leased delivery holds no lease.
func TestImplicitDeliveries(t *testing.T) {
	s, raw, prefix := newRawStore(t)
	ctx := context.Background()

	res := accept(t, s, event(1), []string{"alpha", "beta"}, store.Dedupe{})
	rec, err := s.Event(ctx, res.EventID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if len(rec.Deliveries) != 2 {
		t.Fatalf("Event has %d deliveries, want 2", len(rec.Deliveries))
	}
	before := map[string]store.Delivery{}
	for i, dr := range rec.Deliveries {
		d := dr.Delivery
		if n := raw.Exists(ctx, prefix+"dlv:"+d.ID).Val(); n != 0 {
			t.Fatalf("delivery %s has a hash before its first lease", d.ID)
		}
		want := []string{"alpha", "beta"}[i]
		if d.EventID != res.EventID || d.Destination != want || d.State != store.StatePending ||
			d.Attempts != 0 || d.CreatedAt.IsZero() || !d.DueAt.Equal(d.CreatedAt) || dr.AttemptLog == nil {
			t.Fatalf("implicit delivery %d = %+v (log %v), want pending to %s, created = due", i, d, dr.AttemptLog, want)
		}
		before[d.ID] = d
	}

	found, _, err := s.FindEvents(ctx, store.EventQuery{WebhookID: "1001"}, store.Page{})
	if err != nil || len(found) != 1 || len(found[0].Deliveries) != 2 {
		t.Fatalf("FindEvents = %+v, %v, want the event with its 2 deliveries", found, err)
	}
	for _, dr := range found[0].Deliveries {
		if dr.Delivery != before[dr.Delivery.ID] {
			t.Fatalf("FindEvents delivery = %+v, Event gave %+v", dr.Delivery, before[dr.Delivery.ID])
		}
	}

	// A delivery never leased: outcomes with any token are refused as lost.
	unleased := before[rec.Deliveries[1].Delivery.ID]
	unleased.Lease = "never-issued"
	if err := storetest.Complete(ctx, s, unleased, ok200()); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Complete of a never-leased delivery: %v, want ErrLeaseLost", err)
	}

	// An id of the derived form past the event's deliveries is missing.
	beyond := unleased
	beyond.ID = "dlv_" + strings.TrimPrefix(res.EventID, "evt_") + "_3"
	if err := storetest.Complete(ctx, s, beyond, ok200()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Complete of %s: %v, want ErrNotFound", beyond.ID, err)
	}

	got := leaseN(t, s, "alpha", 1, time.Hour)
	if len(got) != 1 {
		t.Fatalf("leased %d, want 1", len(got))
	}
	d := got[0]
	if n := raw.Exists(ctx, prefix+"dlv:"+d.ID).Val(); n != 1 {
		t.Fatalf("delivery %s has no hash after its lease", d.ID)
	}
	b := before[d.ID]
	if d.EventID != b.EventID || d.Destination != b.Destination || d.State != b.State ||
		!d.CreatedAt.Equal(b.CreatedAt) || !d.DueAt.Equal(b.DueAt) || got[0].Event.ID != res.EventID {
		t.Fatalf("leased %+v, want the implicit %+v", d, b)
	}
	if err := storetest.Complete(ctx, s, got[0], ok200()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	rec, err = s.Event(ctx, res.EventID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	states := map[string]store.DeliveryState{}
	for _, dr := range rec.Deliveries {
		states[dr.Delivery.Destination] = dr.Delivery.State
	}
	if states["alpha"] != store.StateDelivered || states["beta"] != store.StatePending {
		t.Fatalf("states = %v, want alpha delivered, beta pending", states)
	}
}

// Accept queues an implicit delivery at a score that is not a whole
// number, and its first lease takes that for the hash's absence; a leased
// one (a whole score, a hash) is never written over as implicit.
func TestImplicitQueueScores(t *testing.T) {
	s, raw, prefix := newRawStore(t)
	ctx := context.Background()

	res := accept(t, s, event(1), []string{"marked"}, store.Dedupe{})
	marked := "dlv_" + strings.TrimPrefix(res.EventID, "evt_") + "_1"
	score := raw.ZScore(ctx, prefix+"q:marked", marked).Val()
	if score == float64(int64(score)) {
		t.Fatalf("implicit delivery queued at %v, want a score that is not whole", score)
	}
	d := leaseOne(t, s, "marked")
	if d.State != store.StatePending || d.Attempts != 0 || d.Lease == "" || d.Event == nil {
		t.Fatalf("leased %+v", d)
	}
	if after := raw.ZScore(ctx, prefix+"q:marked", d.ID).Val(); after != float64(int64(after)) {
		t.Fatalf("leased delivery's score %v is not whole", after)
	}
	if err := storetest.Retry(ctx, s, d, attempt(1, 503), time.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	d = leaseOne(t, s, "marked")
	if d.Attempts != 1 || d.LastStatus != 503 {
		t.Fatalf("leased again %+v, want the attempt kept", d)
	}
	if err := storetest.Complete(ctx, s, d, attempt(2, 200)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := logNumbers(t, s, d); len(got) != 2 {
		t.Fatalf("log %v, want 2 attempts", got)
	}
}

func TestImplicitDeliveryIDs(t *testing.T) {
	evh := map[string]string{"ca": "1700000000000000000"}
	ev := store.Event{ID: "evt_A_B", Destinations: []string{"x", "y"}}
	tests := []struct {
		id   string
		ok   bool
		dest string
	}{
		{"dlv_A_B_1", true, "x"},
		{"dlv_A_B_2", true, "y"},
		{"dlv_A_B_3", false, ""},
		{"dlv_A_B_0", false, ""},
		{"dlv_A_1", false, ""},
		{"dlv_1", false, ""},
		{"dlv__1", false, ""},
		{"dlv_01JD3Y", false, ""},
		{"evt_A_B_1", false, ""},
	}
	for _, tc := range tests {
		d, ok := implicitDelivery(evh, ev, tc.id)
		if ok != tc.ok || d.Destination != tc.dest {
			t.Errorf("implicitDelivery(%q) = %+v, %v, want ok %v dest %q", tc.id, d, ok, tc.ok, tc.dest)
		}
	}
}
