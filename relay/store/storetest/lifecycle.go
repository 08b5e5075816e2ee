package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

func testEventRecord(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA, destB}, store.Dedupe{})

	var want []store.Attempt
	d := leaseOne(t, s, destA, long)
	for _, fail := range []store.Attempt{attemptFor(d, 503, "503 Service Unavailable"), attemptFor(d, 0, "timeout")} {
		fail.N = d.Attempts + 1
		if err := Retry(ctx, s, d, fail, time.Now()); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		want = append(want, fail)
		d = eventuallyLease(t, s, destA, long)
	}
	ok := attemptFor(d, 200, "")
	if err := Complete(ctx, s, d, ok); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want = append(want, ok)

	rec := mustEvent(t, s, res.EventID)
	wantBody(t, "Event", rec.Event.Body, SeedBody(1))
	if len(rec.Deliveries) != 2 {
		t.Fatalf("Event has %d deliveries, want 2", len(rec.Deliveries))
	}
	got := deliveryOf(t, rec, d.ID)
	if got.State != store.StateDelivered || got.Attempts != 3 || got.LastStatus != 200 || got.Destination != destA {
		t.Fatalf("completed delivery = %+v, want delivered to %s after 3 attempts, last 200", got.Delivery, destA)
	}
	if len(got.AttemptLog) != len(want) {
		t.Fatalf("completed delivery logs %d attempts, want %d", len(got.AttemptLog), len(want))
	}
	for i := range want {
		wantAttempt(t, got.AttemptLog[i], want[i])
	}
	for _, other := range rec.Deliveries {
		if other.ID == d.ID {
			continue
		}
		if other.Destination != destB || other.State != store.StatePending || len(other.AttemptLog) != 0 {
			t.Fatalf("other delivery = %+v, want pending to %s with no attempts", other.Delivery, destB)
		}
	}
	leaseNone(t, s, destA)
	wantDepths(t, s, map[string]int{destB: 1}, nil, 0)

	_, err := s.Event(ctx, "evt_unknown")
	wantErr(t, "Event of an unknown id", err, store.ErrNotFound)
}

func testDepthsLifecycle(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	wantDepths(t, s, nil, nil, 0)

	mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA, destB}, store.Dedupe{Key: "k1", TTL: long})
	mustAccept(t, s, newEvent("1001", SeedBody(2)), []string{destA}, store.Dedupe{})
	p := mustAccept(t, s, newEvent("1009", SeedBody(3)), nil, store.Dedupe{})
	wantDepths(t, s, map[string]int{destA: 2, destB: 1}, nil, 1)

	// Leasing does not change depths; finishing does.
	a1 := leaseOne(t, s, destA, long)
	wantDepths(t, s, map[string]int{destA: 2, destB: 1}, nil, 1)
	if err := Complete(ctx, s, a1, attemptFor(a1, 200, "")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 1)

	b1 := leaseOne(t, s, destB, long)
	if err := DeadLetter(ctx, s, b1, attemptFor(b1, 410, "410 Gone")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1}, map[string]int{destB: 1}, 1)

	a2 := leaseOne(t, s, destA, long)
	if err := Retry(ctx, s, a2, attemptFor(a2, 500, ""), time.Now().Add(long)); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1}, map[string]int{destB: 1}, 1)

	if err := s.ReplayDLQ(ctx, b1.ID); err != nil {
		t.Fatalf("ReplayDLQ: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 1)

	if _, err := s.ReplayParked(ctx, p.EventID, []string{destA, destB}); err != nil {
		t.Fatalf("ReplayParked: %v", err)
	}
	wantDepths(t, s, map[string]int{destA: 2, destB: 2}, nil, 0)

	a3 := leaseOne(t, s, destA, long)
	if err := s.Release(ctx, a3, time.Now()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	res, err := s.Accept(ctx, newEvent("1001", SeedBody(1)), []string{destA, destB}, store.Dedupe{Key: "k1", TTL: long})
	if err != nil || !res.Duplicate {
		t.Fatalf("duplicate Accept = %+v, %v; want a duplicate", res, err)
	}
	wantDepths(t, s, map[string]int{destA: 2, destB: 2}, nil, 0)
}

func testPersist(t *testing.T, open Opener) {
	ctx := context.Background()
	body := append(SeedBody(1), 0xff, 0x00, 0xc3)
	dedupe := store.Dedupe{Key: "1001:persist", TTL: long}

	s1 := openStore(t, open)
	ev := newEvent("1001", body)
	ev.DedupeKey = dedupe.Key
	routed := mustAccept(t, s1, ev, []string{destA}, dedupe)
	parked := mustAccept(t, s1, newEvent("1009", SeedBody(2)), nil, store.Dedupe{})
	retried := mustAccept(t, s1, newEvent("1001", SeedBody(3)), []string{destB}, store.Dedupe{})
	mustAccept(t, s1, newEvent("1001", SeedBody(4)), []string{destC}, store.Dedupe{})

	dB := leaseOne(t, s1, destB, long)
	if err := Retry(ctx, s1, dB, attemptFor(dB, 503, "later"), time.Now().Add(long)); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	dC := leaseOne(t, s1, destC, long)
	if err := DeadLetter(ctx, s1, dC, attemptFor(dC, 500, "boom")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openStore(t, open)
	wantDepths(t, s2, map[string]int{destA: 1, destB: 1}, map[string]int{destC: 1}, 1)

	rec := mustEvent(t, s2, routed.EventID)
	wantBody(t, "reopened Event", rec.Event.Body, body)
	if rec.Event.DedupeKey != dedupe.Key || len(rec.Deliveries) != 1 {
		t.Fatalf("reopened Event = %+v with %d deliveries", rec.Event, len(rec.Deliveries))
	}
	res, err := s2.Accept(ctx, newEvent("1001", body), []string{destA}, dedupe)
	if err != nil || !res.Duplicate || res.EventID != routed.EventID {
		t.Fatalf("Accept after reopen = %+v, %v; want duplicate of %s", res, err, routed.EventID)
	}

	r := deliveryOf(t, mustEvent(t, s2, retried.EventID), dB.ID)
	if r.Attempts != 1 || len(r.AttemptLog) != 1 || r.LastError != "later" {
		t.Fatalf("reopened retried delivery = %+v with %d logged, want 1 attempt", r.Delivery, len(r.AttemptLog))
	}
	dlq := listDLQ(t, s2, "", 0)
	if len(dlq) != 1 || dlq[0].ID != dC.ID || dlq[0].LastStatus != 500 || dlq[0].LastError != "boom" {
		t.Fatalf("reopened ListDLQ = %+v, want just %s", dlq, dC.ID)
	}
	wantIDs(t, "reopened ListParked", eventIDs(listParked(t, s2, 0)), []string{parked.EventID})

	a := leaseOne(t, s2, destA, long)
	if a.EventID != routed.EventID {
		t.Fatalf("leased event %s after reopen, want %s", a.EventID, routed.EventID)
	}
	wantBody(t, "leased after reopen", a.Event.Body, body)
	leaseNone(t, s2, destB)
	if err := s2.ReplayDLQ(ctx, dC.ID); err != nil {
		t.Fatalf("ReplayDLQ after reopen: %v", err)
	}
	if c := leaseOne(t, s2, destC, long); c.ID != dC.ID {
		t.Fatalf("leased %s after ReplayDLQ, want %s", c.ID, dC.ID)
	}
}

func testLeaseAfterReopen(t *testing.T, open Opener) {
	ctx := context.Background()
	s1 := openStore(t, open)
	acceptN(t, s1, 1, destA)
	d := leaseOne(t, s1, destA, 200*time.Millisecond)
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openStore(t, open)
	again := eventuallyLease(t, s2, destA, long)
	if again.ID != d.ID {
		t.Fatalf("leased %s after reopen, want %s", again.ID, d.ID)
	}
	wantErr(t, "Complete with the lease from before the reopen", Complete(ctx, s2, d, attemptFor(d, 200, "")), store.ErrLeaseLost)
	if err := Complete(ctx, s2, again, attemptFor(again, 200, "")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantDepths(t, s2, nil, nil, 0)
}

func testClosed(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA}, store.Dedupe{})
	d := leaseOne(t, s, destA, long)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	a := attemptFor(d, 200, "")
	calls := map[string]func() error{
		"Accept": func() error {
			_, err := s.Accept(ctx, newEvent("1001", SeedBody(2)), []string{destA}, store.Dedupe{})
			return err
		},
		"Lease": func() error {
			_, err := s.Lease(ctx, destA, 1, long)
			return err
		},
		"ExtendLease":          func() error { return s.ExtendLease(ctx, d, long) },
		"Release":              func() error { return s.Release(ctx, d, time.Now()) },
		"SettleWait delivered": func() error { return Complete(ctx, s, d, a) },
		"SettleWait pending":   func() error { return Retry(ctx, s, d, a, time.Now()) },
		"SettleWait dead":      func() error { return DeadLetter(ctx, s, d, a) },
		"Event":                func() error { _, err := s.Event(ctx, res.EventID); return err },
		"ListDLQ":              func() error { _, _, err := s.ListDLQ(ctx, "", store.Page{}); return err },
		"ReplayDLQ":            func() error { return s.ReplayDLQ(ctx, d.ID) },
		"ListParked":           func() error { _, _, err := s.ListParked(ctx, store.Page{}); return err },
		"ReplayParked":         func() error { _, err := s.ReplayParked(ctx, res.EventID, []string{destA}); return err },
		"Depths":               func() error { _, err := s.Depths(ctx); return err },
		"Ping":                 func() error { return s.Ping(ctx) },
		"Settle": func() error {
			return answer(t, func(done func(error)) {
				s.Settle(ctx, d, store.Settlement{State: store.StateDelivered, Attempt: a}, done)
			})
		},
	}
	for name, call := range calls {
		wantErr(t, name+" after Close", call(), store.ErrClosed)
	}
}

func testPing(t *testing.T, open Opener) {
	s := openStore(t, open)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
