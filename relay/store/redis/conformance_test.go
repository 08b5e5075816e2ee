package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// prefixes numbers the key prefixes handed to tests, so tests sharing one
// server never see each other's keys.
var prefixes atomic.Int64

// uniquePrefix returns a key prefix no other test in this run uses.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("test:%d:%d:", time.Now().UnixNano(), prefixes.Add(1))
}

// openStore opens a Store on srv under prefix and closes it when the test ends.
func openStore(t testing.TB, url, prefix string, mod ...func(*Options)) *Store {
	t.Helper()
	opts := Options{URL: url, Prefix: prefix}
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain go-redis client for looking at keys directly.
func rawClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		prefix := uniquePrefix(t)
		return func(t testing.TB) store.Store {
			return openStore(t, srv.URL(), prefix)
		}
	})
}

// TestConformancePartitions runs the contract on one Redis with the events
// spread over 16 partitions, the layout a cluster uses: leases, lists and
// searches merge the partitions.
func TestConformancePartitions(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		prefix := uniquePrefix(t)
		return func(t testing.TB) store.Store {
			return openStore(t, srv.URL(), prefix, withPartitions(16))
		}
	})
}

// withPartitions sets Options.Partitions.
func withPartitions(n int) func(*Options) {
	return func(o *Options) { o.Partitions = n }
}

// newRawStore opens a store on a redis-server of its own under a fresh
// prefix, with a plain client of the same server for looking at keys.
func newRawStore(t testing.TB) (s *Store, raw *goredis.Client, prefix string) {
	t.Helper()
	srv := testredis.Start(t)
	prefix = uniquePrefix(t)
	return openStore(t, srv.URL(), prefix), rawClient(t, srv.URL()), prefix
}
