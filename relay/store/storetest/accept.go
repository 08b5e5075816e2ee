package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

func testAcceptStoresEvent(t *testing.T, open Opener) {
	s := openStore(t, open)
	// Not valid UTF-8 and not valid JSON: the store must keep the bytes as they are.
	body := append(SeedBody(1), 0xff, 0xfe, 0x00, '\r', '\n', 0x80)
	ev := newEvent("1001", body)
	ev.ContentType = "application/json; charset=latin1"
	ev.DedupeKey = "1001:1234-1333-00001"

	res := mustAccept(t, s, ev, []string{destA, destB}, store.Dedupe{Key: ev.DedupeKey, TTL: long})

	rec := mustEvent(t, s, res.EventID)
	got := rec.Event
	wantBody(t, "Event", got.Body, body)
	if got.ContentType != ev.ContentType || got.WebhookID != "1001" || got.DedupeKey != ev.DedupeKey {
		t.Fatalf("Event = content type %q webhook %q dedupe %q, want %q %q %q",
			got.ContentType, got.WebhookID, got.DedupeKey, ev.ContentType, "1001", ev.DedupeKey)
	}
	if !got.ReceivedAt.Equal(ev.ReceivedAt) {
		t.Fatalf("Event ReceivedAt = %v, want %v", got.ReceivedAt, ev.ReceivedAt)
	}
	if got.Parked {
		t.Fatal("Event is parked, want routed")
	}
	wantIDs(t, "Event destinations", got.Destinations, []string{destA, destB})
	if len(rec.Deliveries) != 2 {
		t.Fatalf("Event has %d deliveries, want 2", len(rec.Deliveries))
	}
	seen := map[string]bool{}
	for _, d := range rec.Deliveries {
		if d.ID == "" || d.EventID != res.EventID || d.State != store.StatePending || d.Attempts != 0 {
			t.Fatalf("delivery = %+v, want pending with no attempts for event %s", d.Delivery, res.EventID)
		}
		if len(d.AttemptLog) != 0 {
			t.Fatalf("delivery %s has %d attempts logged, want 0", d.ID, len(d.AttemptLog))
		}
		seen[d.Destination] = true
	}
	if !seen[destA] || !seen[destB] {
		t.Fatalf("deliveries go to %v, want %s and %s", seen, destA, destB)
	}
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 0)

	for _, dest := range []string{destA, destB} {
		d := leaseOne(t, s, dest, long)
		if d.EventID != res.EventID {
			t.Fatalf("leased delivery of event %s, want %s", d.EventID, res.EventID)
		}
		wantBody(t, "leased event", d.Event.Body, body)
	}
}

func testAcceptNoDestsParks(t *testing.T, open Opener) {
	s := openStore(t, open)
	body := SeedBody(7)
	res := mustAccept(t, s, newEvent("9999", body), nil, store.Dedupe{})

	rec := mustEvent(t, s, res.EventID)
	if !rec.Event.Parked {
		t.Fatal("event accepted with no destinations is not parked")
	}
	if len(rec.Event.Destinations) != 0 || len(rec.Deliveries) != 0 {
		t.Fatalf("parked event has destinations %v and %d deliveries, want none",
			rec.Event.Destinations, len(rec.Deliveries))
	}
	wantBody(t, "parked Event", rec.Event.Body, body)

	items, next, err := s.ListParked(context.Background(), store.Page{})
	if err != nil {
		t.Fatalf("ListParked: %v", err)
	}
	if len(items) != 1 || items[0].ID != res.EventID || next != "" {
		t.Fatalf("ListParked = %d items, next %q, want just %s", len(items), next, res.EventID)
	}
	wantBody(t, "ListParked", items[0].Body, body)
	wantDepths(t, s, nil, nil, 1)
}

func testDedupeDuplicate(t *testing.T, open Opener) {
	tests := []struct {
		name  string
		dests []string
	}{
		{"routed", []string{destA, destB}},
		{"parked", nil},
	}
	s := openStore(t, open)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "1001:mid-" + tc.name
			first := mustAccept(t, s, newEvent("1001", SeedBody(1)), tc.dests, store.Dedupe{Key: key, TTL: long})
			before, err := s.Depths(context.Background())
			if err != nil {
				t.Fatalf("Depths: %v", err)
			}

			// A provider retry, possibly with a different body: nothing is written.
			res, err := s.Accept(context.Background(), newEvent("1001", SeedBody(2)), []string{destA}, store.Dedupe{Key: key, TTL: long})
			if err != nil {
				t.Fatalf("second Accept: %v", err)
			}
			if !res.Duplicate || res.EventID != first.EventID || res.Deliveries != 0 {
				t.Fatalf("second Accept = %+v, want duplicate of %s with 0 deliveries", res, first.EventID)
			}
			wantDepths(t, s, before.Queued, before.Dead, before.Parked)
			wantBody(t, "first event", mustEvent(t, s, first.EventID).Event.Body, SeedBody(1))
		})
	}
}

func testDedupeTTLExpiry(t *testing.T, open Opener) {
	s := openStore(t, open)
	const ttl = 2 * time.Second
	d := store.Dedupe{Key: "1001:short-lived", TTL: ttl}
	first := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA}, d)

	res, err := s.Accept(context.Background(), newEvent("1001", SeedBody(1)), []string{destA}, d)
	if err != nil {
		t.Fatalf("Accept within TTL: %v", err)
	}
	if !res.Duplicate || res.EventID != first.EventID {
		t.Fatalf("Accept within TTL = %+v, want duplicate of %s", res, first.EventID)
	}

	time.Sleep(ttl)
	deadline := time.Now().Add(waitFor)
	for {
		res, err := s.Accept(context.Background(), newEvent("1001", SeedBody(1)), []string{destA}, d)
		if err != nil {
			t.Fatalf("Accept after TTL: %v", err)
		}
		if !res.Duplicate {
			if res.EventID == first.EventID || res.Deliveries != 1 {
				t.Fatalf("Accept after TTL = %+v, want a new event with 1 delivery", res)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dedupe claim with TTL %v still live %v after it expired", ttl, waitFor)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantDepths(t, s, map[string]int{destA: 2}, nil, 0)
}

// The store treats the key as opaque bytes; scoping per webhook is the
// caller's job, done by building the key.
func testDedupeKeyIsOpaque(t *testing.T, open Opener) {
	s := openStore(t, open)
	keys := []string{"1001:mid-1", "1002:mid-1", "1001:mid-1 ", "1001:MID-1", "1001:mid-\xff"}
	seen := map[string]bool{}
	for _, k := range keys {
		res := mustAccept(t, s, newEvent("1001", SeedBody(1)), []string{destA}, store.Dedupe{Key: k, TTL: long})
		if seen[res.EventID] {
			t.Fatalf("key %q reused event id %s", k, res.EventID)
		}
		seen[res.EventID] = true
	}
	wantDepths(t, s, map[string]int{destA: len(keys)}, nil, 0)
}

func testDedupeConcurrent(t *testing.T, open Opener) {
	s := openStore(t, open)
	const n = 32
	d := store.Dedupe{Key: "1001:race", TTL: long}
	results := make([]store.AcceptResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Accept(context.Background(), newEvent("1001", SeedBody(i)), []string{destA, destB}, d)
		})
	}
	close(start)
	wg.Wait()

	var winner string
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("Accept %d: %v", i, errs[i])
		}
		if !res.Duplicate {
			if winner != "" {
				t.Fatalf("two winners for one key: %s and %s", winner, res.EventID)
			}
			winner = res.EventID
		}
	}
	if winner == "" {
		t.Fatal("no Accept won the key")
	}
	for i, res := range results {
		if res.Duplicate && res.EventID != winner {
			t.Fatalf("Accept %d: duplicate of %s, want %s", i, res.EventID, winner)
		}
	}
	wantDepths(t, s, map[string]int{destA: 1, destB: 1}, nil, 0)
}
