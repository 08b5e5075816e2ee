package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func withCluster(o *Options) { o.Cluster = true }

// TestConformanceCluster runs the store's whole contract on a three-master
// Redis Cluster, with the partitions spread over the masters and with one:
// the scripts touch many keys at once, which a cluster only allows within
// one slot.
func TestConformanceCluster(t *testing.T) {
	c := testredis.StartCluster(t, false)
	for _, n := range []int{16, 1} { // the default, and every key in one slot
		t.Run(fmt.Sprintf("partitions-%d", n), func(t *testing.T) {
			storetest.Run(t, func(t testing.TB) storetest.Opener {
				prefix := uniquePrefix(t)
				return func(t testing.TB) store.Store {
					return openStore(t, c.URL(), prefix, withCluster, withPartitions(n))
				}
			})
		})
	}
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

// clusterEvent is an event with an id of its own, so a test knows its
// partition before accepting it.
func clusterEvent(n int) store.Event {
	return store.Event{ID: store.NewID("evt_"), WebhookID: "1001", ContentType: "application/json",
		Body: storetest.SeedBody(n), ReceivedAt: time.Now().Truncate(time.Millisecond)}
}

// owners maps each partition of s to the index in c.Masters of the master
// serving its slot.
func owners(t *testing.T, c *testredis.Cluster, s *Store) []int {
	t.Helper()
	out := make([]int, len(s.parts))
	for i, pt := range s.parts {
		out[i] = slotOwner(t, c, pt.prefix)
	}
	return out
}

// TestClusterSpreadsPartitions checks that the partitions' keys really
// land on every master: each master holds events, and a lease drains
// them all from every master.
func TestClusterSpreadsPartitions(t *testing.T) {
	c := testredis.StartCluster(t, false)
	prefix := uniquePrefix(t)
	s := openStore(t, c.URL(), prefix, withCluster)
	ctx := context.Background()
	for i := range 64 {
		if _, err := s.Accept(ctx, clusterEvent(i), []string{"crm"}, store.Dedupe{}); err != nil {
			t.Fatalf("Accept: %v", err)
		}
	}
	for i, m := range c.Masters {
		raw := rawClient(t, m.URL())
		keys, err := raw.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS on master %d: %v", i, err)
		}
		events := 0
		for _, k := range keys {
			if strings.Contains(k, "}:ev:") {
				events++
			}
			// CLUSTER KEYSLOT agrees that this master serves the key.
			slot, err := raw.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
			}
			if want := slotOwner(t, c, k); want != i {
				t.Errorf("key %s (slot %d) found on master %d, its slot is served by %d", k, slot, i, want)
			}
		}
		t.Logf("master %d: %d keys, %d events", i, len(keys), events)
		if events == 0 {
			t.Errorf("master %d holds no event: the partitions do not spread", i)
		}
	}
	ds, err := s.Lease(ctx, "crm", 100, time.Minute)
	if err != nil || len(ds) != 64 {
		t.Fatalf("Lease(100) = %d deliveries, %v; want all 64", len(ds), err)
	}
}

// TestClusterTakeover: two relays share a cluster; one leases every
// delivery and dies (its leases lapse), and the other takes all of them
// over, in every partition, while the dead one's outcomes are refused.
func TestClusterTakeover(t *testing.T) {
	c := testredis.StartCluster(t, false)
	prefix := uniquePrefix(t)
	dead, survivor := openStore(t, c.URL(), prefix, withCluster), openStore(t, c.URL(), prefix, withCluster)
	ctx := context.Background()
	const n = 40
	for i := range n {
		if _, err := dead.Accept(ctx, clusterEvent(i), []string{"crm"}, store.Dedupe{}); err != nil {
			t.Fatalf("Accept: %v", err)
		}
	}
	orphans, err := dead.Lease(ctx, "crm", n, 500*time.Millisecond)
	if err != nil || len(orphans) != n {
		t.Fatalf("Lease = %d deliveries, %v; want %d", len(orphans), err, n)
	}
	if ds, err := survivor.Lease(ctx, "crm", n, time.Minute); err != nil || len(ds) != 0 {
		t.Fatalf("survivor's Lease during the leases = %d, %v; want none", len(ds), err)
	}
	var taken []store.Delivery
	eventually(t, "survivor takes every delivery over", func() error {
		ds, err := survivor.Lease(ctx, "crm", n, time.Minute)
		if err != nil {
			return err
		}
		taken = append(taken, ds...)
		if len(taken) < n {
			return fmt.Errorf("%d of %d taken over", len(taken), n)
		}
		return nil
	})
	for _, d := range orphans {
		if err := storetest.Complete(ctx, dead, d, store.Attempt{N: 1, At: time.Now(), Status: 200}); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("late Complete of the dead relay: %v, want ErrLeaseLost", err)
		}
	}
	for _, d := range taken {
		if err := storetest.Complete(ctx, survivor, d, store.Attempt{N: 1, At: time.Now(), Status: 200}); err != nil {
			t.Fatalf("survivor's Complete: %v", err)
		}
	}
	if d, err := survivor.Depths(ctx); err != nil || d.Queued["crm"] != 0 {
		t.Fatalf("Depths after the takeover = %+v, %v; want nothing queued", d, err)
	}
}

// TestClusterMasterDown kills one master. Without a replica, the calls
// whose partition it served fail as unavailable (ingest answers 503) while
// the other partitions keep accepting and delivering, and once it is back
// nothing accepted is missing. With one, the store follows the promoted
// replica.
func TestClusterMasterDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas bool
	}{{"no replica", false}, {"replica promoted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testredis.StartCluster(t, tc.replicas)
			ctx := context.Background()
			for _, m := range c.Masters {
				raw := rawClient(t, m.URL())
				// Redis's default stops the whole cluster when one slot
				// is down; a partitioned relay is meant to run with
				// this off (README). appendfsync always: the restarted
				// master must have everything it acknowledged.
				for _, kv := range [][2]string{{"cluster-require-full-coverage", "no"}, {"appendfsync", "always"}} {
					if err := raw.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
						t.Fatalf("CONFIG SET %s: %v", kv[0], err)
					}
				}
			}
			s := openStore(t, c.URL(), uniquePrefix(t), withCluster)
			own := owners(t, c, s)
			var accepted []string
			for i := range 32 {
				ev := clusterEvent(i)
				if _, err := s.Accept(ctx, ev, []string{"crm"}, store.Dedupe{}); err != nil {
					t.Fatalf("Accept before the kill: %v", err)
				}
				accepted = append(accepted, ev.ID)
			}
			if tc.replicas {
				// Replication is asynchronous: what the replica has not
				// received when its master dies is lost.
				cc := clusterClient(t, c)
				if err := cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
					return m.Wait(ctx, 1, 5*time.Second).Err()
				}); err != nil {
					t.Fatalf("WAIT: %v", err)
				}
			}
			const victim = 0
			c.KillMaster(victim)

			if !tc.replicas {
				downParts := 0
				for _, o := range own {
					if o == victim {
						downParts++
					}
				}
				if downParts == 0 || downParts == len(own) {
					t.Fatalf("%d of %d partitions on the killed master; the test needs some on each side", downParts, len(own))
				}
				for i := range 48 {
					ev := clusterEvent(100 + i)
					_, err := s.Accept(ctx, ev, []string{"crm"}, store.Dedupe{})
					if own[s.partOf(ev.ID)] == victim {
						if !errors.Is(err, store.ErrUnavailable) {
							t.Fatalf("Accept in a partition of the dead master = %v, want ErrUnavailable", err)
						}
						if _, err := s.Event(ctx, ev.ID); !errors.Is(err, store.ErrUnavailable) {
							t.Fatalf("Event in a partition of the dead master = %v, want ErrUnavailable", err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("Accept in a partition of a live master: %v", err)
					}
					accepted = append(accepted, ev.ID)
				}
				// The live partitions keep delivering.
				ds, err := s.Lease(ctx, "crm", 1000, time.Minute)
				if err != nil {
					t.Fatalf("Lease with a master down: %v", err)
				}
				if want := countLive(s, own, victim, accepted); len(ds) != want {
					t.Fatalf("Lease with a master down = %d deliveries, want the %d of live partitions", len(ds), want)
				}
				for _, d := range ds {
					if err := storetest.Complete(ctx, s, d, store.Attempt{N: 1, At: time.Now(), Status: 200}); err != nil {
						t.Fatalf("Complete in a live partition: %v", err)
					}
				}
				c.Masters[victim].Restart()
				c.WaitOK()
			}
			// Every event accepted is there, in every partition, and the
			// rest of the queue drains.
			eventually(t, "every accepted event readable", func() error {
				for _, id := range accepted {
					if _, err := s.Event(ctx, id); err != nil {
						return err
					}
				}
				return nil
			})
			want := len(accepted)
			if !tc.replicas {
				want = len(accepted) - countLive(s, own, victim, accepted)
			}
			var got int
			eventually(t, "the rest of the queue leasable", func() error {
				ds, err := s.Lease(ctx, "crm", 1000, time.Minute)
				got += len(ds)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("leased %d of %d", got, want)
				}
				return nil
			})
		})
	}
}

// countLive counts the ids whose partition is not on master victim.
func countLive(s *Store, own []int, victim int, ids []string) int {
	n := 0
	for _, id := range ids {
		if own[s.partOf(id)] != victim {
			n++
		}
	}
	return n
}

// clusterClient is a cluster client of c for looking at its nodes.
func clusterClient(t *testing.T, c *testredis.Cluster) *goredis.ClusterClient {
	t.Helper()
	opt, err := goredis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	cc := goredis.NewClusterClient(opt)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
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
