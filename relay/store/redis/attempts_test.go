package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func TestAttemptEncoding(t *testing.T) {
	at := time.Unix(0, 1795671980535098979)
	for _, a := range []store.Attempt{
		{N: 1, At: at, Duration: 1234567, Status: 200},
		{N: 12, At: at, Duration: 30 * time.Second, Error: "dial: refused; 5: x", Response: ""},
		{N: 2, At: at, Status: 503, Error: "HTTP 503", Response: "busy: 1:2 {}"},
		{N: 3, Response: "only a body"},
		{},
	} {
		v := encodeAttempt(a)
		got, err := decodeAttempt(v)
		if err != nil || got != a {
			t.Errorf("decode(encode(%+v)) = %+v, %v (stored %q)", a, got, err, v)
		}
		if a.Status == 200 && len(v) > 64 {
			t.Errorf("success stored in %d bytes, want <= 64: %q", len(v), v)
		}
	}
	for _, bad := range []string{"", "x", "A1 2 3 4", "A1 2 3 4 9:short", "A1 2 3 4 -1:", "{"} {
		if _, err := decodeAttempt(bad); err == nil {
			t.Errorf("decode(%q) did not fail", bad)
		}
	}
}

// attempt is an attempt numbered n with status.
func attempt(n, status int) store.Attempt {
	return store.Attempt{N: n, At: time.Now(), Duration: time.Millisecond, Status: status}
}

// logNumbers lists the attempt numbers of d's log, as Event reads it.
func logNumbers(t testing.TB, s *Store, d store.Delivery) []int {
	t.Helper()
	var ns []int
	for _, a := range deliveryState(t, s, d).AttemptLog {
		ns = append(ns, a.N)
	}
	return ns
}

// leaseOne leases dest's one due delivery.
func leaseOne(t testing.TB, s *Store, dest string) store.Delivery {
	t.Helper()
	ds := leaseN(t, s, dest, 1, time.Hour)
	if len(ds) != 1 {
		t.Fatalf("leased %d deliveries of %s, want 1", len(ds), dest)
	}
	return ds[0]
}

// wantTTL fails unless every key exists with an expiry.
func wantTTL(t testing.TB, raw *goredis.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if ttl := raw.PTTL(context.Background(), k).Val(); ttl <= 0 {
			t.Errorf("key %s has PTTL %v, want an expiry", k, ttl)
		}
	}
}

// The newest attempt lives in the delivery hash ("la"); the att list holds
// the older ones. A delivery that succeeds at once has no list at all, and
// the log reads the same either way.
func TestNewestAttemptInDeliveryHash(t *testing.T) {
	s, raw, prefix := newRawStore(t)
	ctx := context.Background()

	accept(t, s, event(1), []string{"at-once"}, store.Dedupe{})
	d := leaseOne(t, s, "at-once")
	if err := storetest.Complete(ctx, s, d, attempt(1, 200)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if n := raw.Exists(ctx, prefix+"att:"+d.ID).Val(); n != 0 {
		t.Errorf("a delivery that succeeded at once has an att list")
	}
	if got := logNumbers(t, s, d); !slices.Equal(got, []int{1}) {
		t.Errorf("log = %v, want [1]", got)
	}
	// The attempt is short enough to keep the hash a listpack.
	if enc := raw.ObjectEncoding(ctx, prefix+"dlv:"+d.ID).Val(); enc != "listpack" && enc != "ziplist" {
		t.Errorf("delivered hash is a %s, want a listpack", enc)
	}
	wantTTL(t, raw, prefix+"ev:"+d.EventID, prefix+"dlv:"+d.ID)

	// Two retries, a dead letter, a replay and a success: the list takes
	// every attempt but the newest, and the log keeps them all in order.
	accept(t, s, event(2), []string{"slow"}, store.Dedupe{})
	d = leaseOne(t, s, "slow")
	for n := 1; n <= 2; n++ {
		if err := storetest.Retry(ctx, s, d, attempt(n, 503), time.Now()); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		if got, want := raw.LLen(ctx, prefix+"att:"+d.ID).Val(), int64(n-1); got != want {
			t.Fatalf("after attempt %d the att list has %d entries, want %d", n, got, want)
		}
		d = leaseOne(t, s, "slow")
	}
	if err := storetest.DeadLetter(ctx, s, d, attempt(3, 500)); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := s.ReplayDLQ(ctx, d.ID); err != nil {
		t.Fatalf("ReplayDLQ: %v", err)
	}
	d = leaseOne(t, s, "slow")
	if err := storetest.Complete(ctx, s, d, attempt(4, 200)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := logNumbers(t, s, d); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("log = %v, want [1 2 3 4]", got)
	}
	if got := raw.LLen(ctx, prefix+"att:"+d.ID).Val(); got != 3 {
		t.Errorf("att list has %d entries, want 3", got)
	}
	if last, err := decodeAttempt(raw.HGet(ctx, prefix+"dlv:"+d.ID, "la").Val()); err != nil || last.N != 4 {
		t.Errorf("la = %+v (%v), want attempt 4", last, err)
	}
	wantTTL(t, raw, prefix+"ev:"+d.EventID, prefix+"dlv:"+d.ID, prefix+"att:"+d.ID)
}

// A lease of a delivery that has a hash hands out the hash as the lease
// left it (read once, then patched by the script), so the delivery it
// returns is the stored one, with a token that holds.
func TestLeaseAgainHandsOutStoredDelivery(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	s := openStore(t, srv.URL(), prefix)
	ctx := context.Background()

	accept(t, s, event(1), []string{"again"}, store.Dedupe{})
	d := leaseOne(t, s, "again")
	if err := storetest.Retry(ctx, s, d, attempt(1, 503), time.Now()); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	for n := 1; n <= 2; n++ {
		d = leaseOne(t, s, "again")
		stored := deliveryState(t, s, d).Delivery
		got := d
		got.Lease, got.Event = "", nil
		if got != stored || d.Lease == "" || d.Event == nil || d.Attempts != 1 || d.LastStatus != 503 {
			t.Fatalf("lease %d handed out %+v (lease %q), stored %+v", n, got, d.Lease, stored)
		}
		if n == 1 {
			if err := s.Release(ctx, d, time.Now()); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}
	}
	if err := storetest.Complete(ctx, s, d, attempt(2, 200)); err != nil {
		t.Fatalf("Complete with the second lease's token: %v", err)
	}
}
