package redis

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// A zero due time of Retry or Release is the Store's clock's now. Due
// times are compared with Redis's TIME, so a clock an hour ahead keeps the
// delivery from being leased, and one an hour behind makes it due at once.
func TestZeroDueReadsTheStoreClock(t *testing.T) {
	srv := testredis.Start(t)
	clk := clock.NewFake(time.Now().Add(time.Hour))
	s := openStore(t, srv.URL(), uniquePrefix(t), func(o *Options) { o.Clock = clk })
	ctx := context.Background()

	accept(t, s, event(1), []string{"ahead"}, store.Dedupe{})
	d := leaseOne(t, s, "ahead")
	if err := storetest.Retry(ctx, s, d, attempt(1, 503), time.Time{}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if due := deliveryState(t, s, d).DueAt; !due.Equal(clk.Now()) {
		t.Fatalf("retried with a zero due: due %v, want the clock's %v", due, clk.Now())
	}
	if ds := leaseN(t, s, "ahead", 1, time.Hour); len(ds) != 0 {
		t.Fatalf("leased %s, due an hour from Redis's now", ds[0].ID)
	}

	clk.Set(time.Now().Add(-time.Hour))
	accept(t, s, event(2), []string{"behind"}, store.Dedupe{})
	d = leaseOne(t, s, "behind")
	if err := s.Release(ctx, d, time.Time{}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if due := deliveryState(t, s, d).DueAt; !due.Equal(clk.Now()) {
		t.Fatalf("released with a zero due: due %v, want the clock's %v", due, clk.Now())
	}
	if again := leaseOne(t, s, "behind"); again.ID != d.ID {
		t.Fatalf("leased %s, want %s, due an hour ago", again.ID, d.ID)
	}
}
