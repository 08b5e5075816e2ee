package testredis

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// clusterClient connects to c the way the Redis store does with cluster on.
func clusterClient(t *testing.T, c *Cluster) *goredis.ClusterClient {
	t.Helper()
	opt, err := goredis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", c.URL(), err)
	}
	if len(opt.Addrs) != 3 {
		t.Fatalf("URL %q names %d seeds, want the 3 masters", c.URL(), len(opt.Addrs))
	}
	rdb := goredis.NewClusterClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestStartClusterServesEverySlot(t *testing.T) {
	c := StartCluster(t, false)
	ctx := context.Background()
	rdb := clusterClient(t, c)

	// Keys spread over every master: each one's slots are served.
	owners := map[string]bool{}
	for i := 0; len(owners) < 3 && i < 1000; i++ {
		key := fmt.Sprintf("k%d", i)
		if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		node, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%s): %v", key, err)
		}
		owners[node.Options().Addr] = true
	}
	for _, m := range c.Masters {
		if !owners[m.Addr()] {
			t.Errorf("no key landed on master %s (owners %v)", m.Addr(), owners)
		}
		if role := c.Role(m); role != "master" {
			t.Errorf("%s: role %q, want master", m.Addr(), role)
		}
		if cfg := do(t, m.Addr(), "CONFIG GET appendonly"); cfg != "appendonly yes" {
			t.Errorf("%s: CONFIG GET appendonly = %q", m.Addr(), cfg)
		}
	}
	if len(c.Replicas) != 0 {
		t.Errorf("%d replicas, want none", len(c.Replicas))
	}
}

func TestStartClusterPromotesAReplica(t *testing.T) {
	c := StartCluster(t, true)
	ctx := context.Background()
	rdb := clusterClient(t, c)
	for i, r := range c.Replicas {
		if role := c.Role(r); role != "slave" {
			t.Fatalf("replica %d (%s): role %q", i, r.Addr(), role)
		}
	}
	// A key on the first master, written with WAIT so its replica has it.
	key := ""
	for i := 0; key == "" && i < 1000; i++ {
		k := fmt.Sprintf("k%d", i)
		if n, err := rdb.MasterForKey(ctx, k); err == nil && n.Options().Addr == c.Masters[0].Addr() {
			key = k
		}
	}
	if key == "" {
		t.Fatal("found no key on the first master")
	}
	if err := rdb.Set(ctx, key, "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, _ := rdb.MasterForKey(ctx, key)
	if acked, err := n.Do(ctx, "WAIT", 1, 5000).Int64(); err != nil || acked != 1 {
		t.Fatalf("WAIT 1: %d replicas acknowledged, %v", acked, err)
	}

	c.KillMaster(0)
	if role := c.Role(c.Replicas[0]); role != "master" {
		t.Fatalf("replica of the killed master: role %q, want master", role)
	}
	if got := do(t, c.Replicas[0].Addr(), "GET "+key); got != "kept" {
		t.Fatalf("GET %s on the promoted replica = %q", key, got)
	}
}
