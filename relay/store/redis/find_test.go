package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// The search index does not outlive the events: an event that expired
// after the retention is neither found nor left in evidx, whether the next
// retire or the next search drops its entry.
func TestFindIndexFollowsRetention(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	raw := rawClient(t, srv.URL())
	s := openStore(t, srv.URL(), prefix, func(o *Options) { o.Retention = 200 * time.Millisecond })
	ctx := context.Background()

	finish := func(n int) string {
		res := accept(t, s, event(n), []string{"alpha"}, store.Dedupe{})
		if err := storetest.Complete(ctx, s, leaseN(t, s, "alpha", 1, time.Hour)[0], ok200()); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		return res.EventID
	}
	first := finish(1)
	dead := accept(t, s, event(2), []string{"beta"}, store.Dedupe{}).EventID
	d := leaseN(t, s, "beta", 1, time.Hour)[0]
	if err := storetest.DeadLetter(ctx, s, d, store.Attempt{At: time.Now(), Status: 500}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	eventually(t, "first event expires", func() error {
		if n := raw.Exists(ctx, prefix+"ev:"+first).Val(); n != 0 {
			return fmt.Errorf("event %s still exists", first)
		}
		return nil
	})
	// This retire finds the first event's expiry passed and drops its entry.
	second := finish(3)
	if got := raw.ZRange(ctx, prefix+"evidx", 0, -1).Val(); len(got) != 2 || got[0] != dead || got[1] != second {
		t.Fatalf("evidx = %v, want [%s %s]", got, dead, second)
	}

	eventually(t, "second event expires", func() error {
		if n := raw.Exists(ctx, prefix+"ev:"+second).Val(); n != 0 {
			return fmt.Errorf("event %s still exists", second)
		}
		return nil
	})
	items, next, err := s.FindEvents(ctx, store.EventQuery{}, store.Page{})
	if err != nil || next != "" || len(items) != 1 || items[0].Event.ID != dead {
		t.Fatalf("FindEvents = %d items, next %q, %v; want only the dead event %s", len(items), next, err, dead)
	}
	// The search dropped the expired entry it met.
	if got := raw.ZRange(ctx, prefix+"evidx", 0, -1).Val(); len(got) != 1 || got[0] != dead {
		t.Fatalf("evidx after the search = %v, want [%s]", got, dead)
	}
}
