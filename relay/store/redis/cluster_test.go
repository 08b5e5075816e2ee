package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func withCluster(o *Options) { o.Cluster = true }

// TestConformanceCluster runs the store's whole contract on a three-master
// Redis Cluster: the scripts touch many keys at once, which a cluster only
// allows within one slot.
func TestConformanceCluster(t *testing.T) {
	c := testredis.StartCluster(t, false)
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		prefix := uniquePrefix(t)
		return func(t testing.TB) store.Store {
			return openStore(t, c.URL(), prefix, withCluster)
		}
	})
}

func TestClusterPrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"relay:", "{relay:}"},
		{"{relay}:", "{relay}:"},
		{"app:{relay}:", "app:{relay}:"},
		{"odd{}:", "{odd{}:}"}, // an empty tag hashes the whole key, so it is no tag
		{"half{open:", "{half{open:}"},
	} {
		if got := clusterPrefix(tc.in); got != tc.want {
			t.Errorf("clusterPrefix(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClusterMasterDown kills the master that holds the store's slot.
// Without a replica, calls fail as unavailable (ingest answers 503) while
// the slot is down; with one, the store follows the promoted replica.
func TestClusterMasterDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas bool
	}{{"no replica", false}, {"replica promoted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testredis.StartCluster(t, tc.replicas)
			s := openStore(t, c.URL(), uniquePrefix(t), withCluster)
			ctx := context.Background()
			accept := func(n int) (store.AcceptResult, error) {
				ev := store.Event{WebhookID: "1001", ContentType: "application/json",
					Body: storetest.SeedBody(n), ReceivedAt: time.Now().Truncate(time.Millisecond)}
				return s.Accept(ctx, ev, []string{"crm"}, store.Dedupe{})
			}
			if _, err := accept(1); err != nil {
				t.Fatalf("Accept before the kill: %v", err)
			}

			owner := slotOwner(t, c, s.prefix)
			c.KillMaster(owner)

			if !tc.replicas {
				if _, err := accept(2); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("Accept with the slot's master down = %v, want ErrUnavailable", err)
				}
				return
			}
			// Calls fail as unavailable until the client re-reads the slot
			// map (every clusterReload); go-redis's own default, a minute,
			// runs past this bound.
			var res store.AcceptResult
			var err error
			for range 150 {
				if res, err = accept(3); err == nil || !errors.Is(err, store.ErrUnavailable) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("Accept after the failover: %v", err)
			}
			if _, err := s.Event(ctx, res.EventID); err != nil {
				t.Fatalf("Event %s after the failover: %v", res.EventID, err)
			}
		})
	}
}

// slotOwner is the index in c.Masters of the master serving key's slot.
func slotOwner(t *testing.T, c *testredis.Cluster, key string) int {
	t.Helper()
	opt, err := goredis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClusterClient(opt)
	defer rdb.Close()
	node, err := rdb.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatalf("MasterForKey(%q): %v", key, err)
	}
	for i, m := range c.Masters {
		if m.Addr() == node.Options().Addr {
			return i
		}
	}
	t.Fatalf("%s is not one of the masters", node.Options().Addr)
	return -1
}
