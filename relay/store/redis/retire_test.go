package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// wantNoTTL fails unless key exists without an expiry.
func wantNoTTL(t testing.TB, raw *goredis.Client, key string) {
	t.Helper()
	if ttl := raw.PTTL(context.Background(), key).Val(); ttl != -1 {
		t.Fatalf("key %s has PTTL %v, want no expiry", key, ttl)
	}
}

// wantRetired fails unless every key of the event evid and its deliveries
// ids expires (the att lists those that exist) and evexp lists the event.
func wantRetired(t testing.TB, raw *goredis.Client, prefix, evid string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	keys := []string{prefix + "ev:" + evid}
	for _, id := range ids {
		keys = append(keys, prefix+"dlv:"+id)
		if raw.Exists(ctx, prefix+"att:"+id).Val() == 1 {
			keys = append(keys, prefix+"att:"+id)
		}
	}
	wantTTL(t, raw, keys...)
	if _, err := raw.ZScore(ctx, prefix+"evexp", evid).Result(); err != nil {
		t.Errorf("evexp has no entry for %s: %v", evid, err)
	}
}

// An event with one delivery keeps no "out" counter: its delivery's hash
// says it is the only one, and its end (delivered, or discarded from the
// DLQ) retires the event.
func TestSoleDeliveryRetiresItsEvent(t *testing.T) {
	s, raw, prefix := newRawStore(t)
	ctx := context.Background()

	// Delivered at once.
	res := accept(t, s, event(1), []string{"one"}, store.Dedupe{})
	evk := prefix + "ev:" + res.EventID
	if raw.HExists(ctx, evk, "out").Val() {
		t.Fatal("an event with one delivery has an out counter")
	}
	d := leaseOne(t, s, "one")
	if raw.HGet(ctx, prefix+"dlv:"+d.ID, "nd").Val() != "1" {
		t.Fatal("the only delivery of its event has no nd 1")
	}
	wantNoTTL(t, raw, evk)
	if err := storetest.Complete(ctx, s, d, ok200()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if raw.HExists(ctx, evk, "out").Val() {
		t.Error("completing the only delivery wrote an out counter")
	}
	wantRetired(t, raw, prefix, res.EventID, d.ID)

	// Retried, dead, then deleted from the DLQ.
	res = accept(t, s, event(2), []string{"one"}, store.Dedupe{})
	d = leaseOne(t, s, "one")
	if err := storetest.Retry(ctx, s, d, store.Attempt{At: time.Now(), Status: 503}, time.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	d = leaseOne(t, s, "one")
	if err := storetest.DeadLetter(ctx, s, d, store.Attempt{At: time.Now(), Status: 500}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	wantNoTTL(t, raw, prefix+"ev:"+res.EventID)
	if err := s.DeleteDLQ(ctx, d.ID); err != nil {
		t.Fatalf("DeleteDLQ: %v", err)
	}
	if raw.HExists(ctx, prefix+"ev:"+res.EventID, "out").Val() {
		t.Error("deleting the only delivery from the DLQ wrote an out counter")
	}
	if raw.Exists(ctx, prefix+"att:"+d.ID).Val() != 1 {
		t.Fatal("a delivery tried twice has no att list")
	}
	wantRetired(t, raw, prefix, res.EventID, d.ID)

	// A parked event replayed to one destination is the same.
	parked := accept(t, s, event(3), nil, store.Dedupe{})
	if n, err := s.ReplayParked(ctx, parked.EventID, []string{"one"}); err != nil || n != 1 {
		t.Fatalf("ReplayParked = %d, %v", n, err)
	}
	d = leaseOne(t, s, "one")
	if err := storetest.Complete(ctx, s, d, ok200()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantRetired(t, raw, prefix, parked.EventID, d.ID)
}

// An event with three deliveries retires when its last one finishes, in
// whatever order they finish and however (delivered at once, delivered
// after a retry, discarded from the DLQ); until then nothing of it expires.
func TestMultiDestinationRetiresOnLast(t *testing.T) {
	s, raw, prefix := newRawStore(t)
	ctx := context.Background()

	// finish ends d one way per place i, starting from a fresh lease.
	finish := func(i int, d store.Delivery) {
		t.Helper()
		var err error
		switch i {
		case 0:
			err = storetest.Complete(ctx, s, d, ok200())
		case 1:
			if err = storetest.Retry(ctx, s, d, store.Attempt{At: time.Now(), Status: 503}, time.Now()); err == nil {
				err = storetest.Complete(ctx, s, leaseOne(t, s, d.Destination), ok200())
			}
		case 2:
			if err = storetest.DeadLetter(ctx, s, d, store.Attempt{At: time.Now(), Status: 500}); err == nil {
				err = s.DeleteDLQ(ctx, d.ID)
			}
		}
		if err != nil {
			t.Fatalf("finishing %s: %v", d.ID, err)
		}
	}
	orders := [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for k, order := range orders {
		var dests []string
		for i := range 3 {
			dests = append(dests, fmt.Sprintf("m%d-%d", k, i))
		}
		res := accept(t, s, event(k), dests, store.Dedupe{})
		evk := prefix + "ev:" + res.EventID
		if got := raw.HGet(ctx, evk, "out").Val(); got != "3" {
			t.Fatalf("order %v: out = %q, want 3", order, got)
		}
		ds := make([]store.Delivery, 3)
		for i, dest := range dests {
			ds[i] = leaseOne(t, s, dest)
			if got := raw.HGet(ctx, prefix+"dlv:"+ds[i].ID, "nd").Val(); got != "3" {
				t.Fatalf("order %v: delivery %d has nd %q, want 3", order, i, got)
			}
		}
		for step, i := range order {
			finish(i, ds[i])
			left := 2 - step
			if got := raw.HGet(ctx, evk, "out").Val(); got != fmt.Sprint(left) {
				t.Fatalf("order %v after %d finished: out = %q, want %d", order, step+1, got, left)
			}
			if left > 0 {
				wantNoTTL(t, raw, evk)
				for _, d := range ds {
					wantNoTTL(t, raw, prefix+"dlv:"+d.ID)
				}
			}
		}
		wantRetired(t, raw, prefix, res.EventID, ds[0].ID, ds[1].ID, ds[2].ID)
		if raw.Exists(ctx, prefix+"att:"+ds[1].ID, prefix+"att:"+ds[2].ID).Val() != 1 {
			t.Fatalf("order %v: want an att list for the retried delivery only", order)
		}
		rec, err := s.Event(ctx, res.EventID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		want := []store.DeliveryState{store.StateDelivered, store.StateDelivered, store.StateDiscarded}
		for i, dr := range rec.Deliveries {
			if dr.State != want[i] || len(dr.AttemptLog) != []int{1, 2, 1}[i] {
				t.Errorf("order %v: delivery %d is %s with %d attempts", order, i, dr.State, len(dr.AttemptLog))
			}
		}
	}

	// A parked event replayed to three destinations lists its delivery
	// ids ("dlvs"): its deliveries' hashes get no "nd", and the last one
	// reads the ids to retire them all.
	parked := accept(t, s, event(99), nil, store.Dedupe{})
	dests := []string{"p-0", "p-1", "p-2"}
	if n, err := s.ReplayParked(ctx, parked.EventID, dests); err != nil || n != 3 {
		t.Fatalf("ReplayParked = %d, %v", n, err)
	}
	var ids []string
	for i, dest := range dests {
		d := leaseOne(t, s, dest)
		if raw.HExists(ctx, prefix+"dlv:"+d.ID, "nd").Val() {
			t.Fatalf("a delivery of an event with dlvs has nd")
		}
		finish(i, d)
		ids = append(ids, d.ID)
		if i < 2 {
			wantNoTTL(t, raw, prefix+"ev:"+parked.EventID)
		}
	}
	wantRetired(t, raw, prefix, parked.EventID, ids...)
}
