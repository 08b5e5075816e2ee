package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// A delivery whose lease ran out unextended (its relay was killed) is taken
// over in its original due order: a survivor with a backlog of its own,
// queued after it, leases it first, whether it was queued implicitly
// (leased straight from accept) or had been moved since (a retry).
func TestLapsedLeaseKeepsItsDueOrder(t *testing.T) {
	srv := testredis.Start(t)
	for _, tt := range []struct {
		name  string
		retry bool // the orphan was retried once before the dead relay leased it
	}{
		{"queued by accept", false},
		{"queued by a retry", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := uniquePrefix(t)
			dead, survivor := openStore(t, srv.URL(), prefix), openStore(t, srv.URL(), prefix)
			raw := rawClient(t, srv.URL())
			ctx := context.Background()
			acceptOne := func(mid string) string {
				t.Helper()
				ev := store.Event{WebhookID: "1001", Body: []byte(`{"mid":"` + mid + `"}`), ReceivedAt: time.Now()}
				res, err := dead.Accept(ctx, ev, []string{"crm"}, store.Dedupe{})
				if err != nil {
					t.Fatal(err)
				}
				return res.EventID
			}
			orphanEvent := acceptOne("orphan")
			lease := func(st *Store, d time.Duration) store.Delivery {
				t.Helper()
				ds, err := st.Lease(ctx, "crm", 1, d)
				if err != nil || len(ds) != 1 {
					t.Fatalf("Lease: %d deliveries, %v; want 1", len(ds), err)
				}
				return ds[0]
			}
			if tt.retry {
				d := lease(dead, time.Minute)
				if err := storetest.Retry(ctx, dead, d, store.Attempt{N: 1, At: time.Now(), Status: 503}, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			orphan := lease(dead, 300*time.Millisecond)
			if orphan.EventID != orphanEvent {
				t.Fatalf("the dead relay leased %s, want the orphan", orphan.EventID)
			}
			lu, err := raw.HGet(ctx, prefix+"dlv:"+orphan.ID, "lu").Float64()
			if err != nil {
				t.Fatal(err)
			}
			// The survivor's own backlog is due after the orphan was (in a
			// later millisecond) and before its lease runs out, where an
			// orphan used to be put.
			redisPast(t, raw, float64(orphan.DueAt.UnixMilli()+1))
			for i := range 5 {
				acceptOne("backlog-" + strconv.Itoa(i))
			}
			// Nothing extends the orphan's lease; wait, by Redis's clock,
			// until it has run out.
			redisPast(t, raw, lu)
			if got := lease(survivor, time.Minute); got.ID != orphan.ID {
				t.Fatalf("the survivor leased %s (event %s) first, want the orphan %s, due before its backlog", got.ID, got.EventID, orphan.ID)
			}
		})
	}
}

// redisPast waits until Redis's clock is past ms (unix milliseconds).
func redisPast(t *testing.T, raw *goredis.Client, ms float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := raw.Time(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if float64(now.UnixMilli()) > ms {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis's clock did not pass %.0f", ms)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
