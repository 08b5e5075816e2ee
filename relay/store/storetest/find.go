package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

func testDeleteDLQ(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA, destB}, store.Dedupe{})
	dA := leaseOne(t, s, destA, long)
	if err := DeadLetter(ctx, s, dA, attemptFor(dA, 500, "boom")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if st := mustEvent(t, s, res.EventID).Status(); st != store.EventPending {
		t.Fatalf("Status with one dead and one pending delivery = %s, want pending", st)
	}
	dB := leaseOne(t, s, destB, long)
	if err := Complete(ctx, s, dB, attemptFor(dB, 200, "")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if st := mustEvent(t, s, res.EventID).Status(); st != store.EventDead {
		t.Fatalf("Status with one dead and one delivered delivery = %s, want dead", st)
	}

	if err := s.DeleteDLQ(ctx, dA.ID); err != nil {
		t.Fatalf("DeleteDLQ: %v", err)
	}
	if items := listDLQ(t, s, "", 0); len(items) != 0 {
		t.Fatalf("ListDLQ after DeleteDLQ has %d items, want 0", len(items))
	}
	if items := listDLQ(t, s, destA, 0); len(items) != 0 {
		t.Fatalf("ListDLQ(%s) after DeleteDLQ has %d items, want 0", destA, len(items))
	}
	wantDepths(t, s, nil, nil, 0)
	rec := mustEvent(t, s, res.EventID)
	got := deliveryOf(t, rec, dA.ID)
	if got.State != store.StateDiscarded || got.Attempts != 1 || len(got.AttemptLog) != 1 || got.LastStatus != 500 {
		t.Fatalf("deleted delivery = %+v with %d attempts logged, want discarded keeping its 1 attempt",
			got.Delivery, len(got.AttemptLog))
	}
	if st := rec.Status(); st != store.EventDiscarded {
		t.Fatalf("Status = %s, want discarded", st)
	}
	leaseNone(t, s, destA)

	wantErr(t, "second DeleteDLQ", s.DeleteDLQ(ctx, dA.ID), store.ErrNotFound)
	wantErr(t, "ReplayDLQ after DeleteDLQ", s.ReplayDLQ(ctx, dA.ID), store.ErrNotFound)
	wantErr(t, "DeleteDLQ of a delivered delivery", s.DeleteDLQ(ctx, dB.ID), store.ErrNotFound)
	wantErr(t, "DeleteDLQ of an unknown id", s.DeleteDLQ(ctx, "dlv_unknown"), store.ErrNotFound)
}

// findFixture accepts five events in a known order and state and returns
// their ids, oldest first, and the time the fourth was received.
func findFixture(t *testing.T, s store.Store) ([]string, time.Time) {
	t.Helper()
	ctx := context.Background()
	base := time.Now().Truncate(time.Millisecond)
	specs := []struct {
		webhook, mid string
		dests        []string
	}{
		{"1001", "m-0", []string{destA}},     // delivered
		{"1001", "m-1", []string{destA}},     // dead
		{"1002", "m-2", nil},                 // parked
		{"1002", "m-1", []string{destB}},     // pending
		{"1001", "", []string{destA, destB}}, // pending, no dedupe key
	}
	ids := make([]string, len(specs))
	for i, sp := range specs {
		ev := newEvent(sp.webhook, SeedBody(i))
		ev.DedupeKey = sp.mid
		ev.ReceivedAt = base.Add(time.Duration(i) * time.Second)
		ids[i] = mustAccept(t, s, ev, sp.dests, store.Dedupe{}).EventID
		switch i {
		case 0:
			d := leaseOne(t, s, destA, long)
			if err := Complete(ctx, s, d, attemptFor(d, 200, "")); err != nil {
				t.Fatalf("Complete: %v", err)
			}
		case 1:
			d := leaseOne(t, s, destA, long)
			if err := DeadLetter(ctx, s, d, attemptFor(d, 500, "")); err != nil {
				t.Fatalf("DeadLetter: %v", err)
			}
		}
	}
	return ids, base.Add(3 * time.Second)
}

func findAll(t testing.TB, s store.Store, q store.EventQuery, limit int) []store.EventRecord {
	t.Helper()
	return collect(t, "FindEvents", limit, func(p store.Page) ([]store.EventRecord, string, error) {
		return s.FindEvents(context.Background(), q, p)
	})
}

func testFindEvents(t *testing.T, open Opener) {
	s := openStore(t, open)
	e, fourth := findFixture(t, s)
	tests := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"everything, newest first", store.EventQuery{}, []string{e[4], e[3], e[2], e[1], e[0]}},
		{"webhook", store.EventQuery{WebhookID: "1001"}, []string{e[4], e[1], e[0]}},
		{"mid across webhooks", store.EventQuery{DedupeKey: "m-1"}, []string{e[3], e[1]}},
		{"mid and webhook", store.EventQuery{WebhookID: "1002", DedupeKey: "m-1"}, []string{e[3]}},
		{"pending", store.EventQuery{Status: store.EventPending}, []string{e[4], e[3]}},
		{"dead", store.EventQuery{Status: store.EventDead}, []string{e[1]}},
		{"delivered", store.EventQuery{Status: store.EventDelivered}, []string{e[0]}},
		{"parked", store.EventQuery{Status: store.EventParked}, []string{e[2]}},
		{"since", store.EventQuery{Since: fourth}, []string{e[4], e[3]}},
		{"since and webhook", store.EventQuery{Since: fourth, WebhookID: "1002"}, []string{e[3]}},
		{"since the future", store.EventQuery{Since: time.Now().Add(time.Hour)}, nil},
		{"unknown mid", store.EventQuery{DedupeKey: "m-9"}, nil},
	}
	for _, tc := range tests {
		for _, limit := range []int{0, 1, 2} {
			got := findAll(t, s, tc.q, limit)
			wantIDs(t, tc.name+" FindEvents", ids(got, func(r store.EventRecord) string { return r.Event.ID }), tc.want)
		}
	}

	got := findAll(t, s, store.EventQuery{WebhookID: "1001"}, 0)
	if len(got[0].Deliveries) != 2 || got[0].Status() != store.EventPending {
		t.Fatalf("newest event: %d deliveries, status %s; want 2, pending", len(got[0].Deliveries), got[0].Status())
	}
	for _, r := range got {
		if len(r.Event.Body) != 0 {
			t.Fatalf("FindEvents returned the body of %s", r.Event.ID)
		}
		if r.Event.WebhookID != "1001" || r.Event.ReceivedAt.IsZero() {
			t.Fatalf("FindEvents item %+v lacks its fields", r.Event)
		}
	}
	if d := got[1].Deliveries; len(d) != 1 || d[0].State != store.StateDead || d[0].Destination != destA {
		t.Fatalf("dead event's deliveries = %+v, want one dead on %s", d, destA)
	}
}

func testBadCursor(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	acceptN(t, s, 1)
	const bad = "!!not a cursor!!"
	_, _, err := s.ListDLQ(ctx, "", store.Page{Cursor: bad})
	wantErr(t, "ListDLQ with a bad cursor", err, store.ErrBadCursor)
	_, _, err = s.ListParked(ctx, store.Page{Cursor: bad})
	wantErr(t, "ListParked with a bad cursor", err, store.ErrBadCursor)
}
