package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
)

// openErr opens a Store on url under prefix and returns Open's error,
// closing the Store if there is one.
func openErr(t testing.TB, url, prefix string, mod ...func(*Options)) error {
	t.Helper()
	opts := Options{URL: url, Prefix: prefix}
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := Open(ctx, opts)
	if err == nil {
		_ = s.Close()
	}
	return err
}

// wantFormatErr fails unless err refuses the keyspace under prefix, naming
// what it found, the format expected and what to do.
func wantFormatErr(t testing.TB, err error, prefix, found string) {
	t.Helper()
	if !errors.Is(err, errFormat) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("error %v, want the format refusal, not unavailable", err)
	}
	for _, part := range []string{`"` + prefix + `"`, found, `format "` + formatVersion + `"`, "drain", "another store.redis.prefix"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
}

// wantMarker fails unless the format key under prefix holds this format.
func wantMarker(t testing.TB, raw goredis.Cmdable, prefix string) {
	t.Helper()
	wantMarkers(t, raw, []string{prefix + formatKey}, formatVersion)
}

// wantMarkers fails unless every one of the format keys holds want.
func wantMarkers(t testing.TB, raw goredis.Cmdable, keys []string, want string) {
	t.Helper()
	for _, k := range keys {
		if v, err := raw.Get(context.Background(), k).Result(); err != nil || v != want {
			t.Fatalf("format marker %s = %q, %v; want %q", k, v, err, want)
		}
	}
}

// markerKeys are the format keys of a store of n partitions under prefix,
// on a cluster (where one partition's prefix is a hash tag) or not.
func markerKeys(prefix string, n int, cluster bool) []string {
	if n == 1 && cluster {
		prefix = clusterPrefix(prefix)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = partPrefix(prefix, i, n) + formatKey
	}
	return keys
}

// testFormat runs the marker's outcomes on one Redis (raw reaches its
// keys, url opens stores): an empty keyspace is marked, by relays opening
// together too; relay data without the marker or with another format's is
// refused at Open, and a marker changed under a running Store stops its
// accepts.
func testFormat(t *testing.T, url string, raw goredis.Cmdable, mod ...func(*Options)) {
	ctx := context.Background()
	var o Options
	for _, m := range mod {
		m(&o)
	}
	n := o.Partitions
	if n == 0 {
		n = 1
		if o.Cluster {
			n = 16
		}
	}
	// key is the prefix the errors name: with one partition on a cluster
	// the hash tag.
	key := func(prefix string) string {
		if o.Cluster && n == 1 {
			return clusterPrefix(prefix)
		}
		return prefix
	}
	markers := func(prefix string) []string { return markerKeys(prefix, n, o.Cluster) }
	setAll := func(prefix, v string) {
		for _, k := range markers(prefix) {
			if err := raw.Set(ctx, k, v, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
		}
	}

	// Empty: every one of the relays starting together opens, one marker.
	prefix := uniquePrefix(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = openErr(t, url, prefix, mod...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Open of an empty keyspace: %v", err)
		}
	}
	wantMarkers(t, raw, markers(prefix), formatValue(n))

	// A probe alone is no relay data: CheckWrite may write one into a
	// Redis restarted empty before its first event.
	prefix = uniquePrefix(t)
	if err := raw.Set(ctx, key(prefix)+"probe", 1, time.Minute).Err(); err != nil {
		t.Fatalf("SET probe: %v", err)
	}
	if err := openErr(t, url, prefix, mod...); err != nil {
		t.Fatalf("Open with only a probe key: %v", err)
	}
	wantMarkers(t, raw, markers(prefix), formatValue(n))

	// Relay data without a marker (as every relay before markers wrote).
	prefix = uniquePrefix(t)
	s := openStore(t, url, prefix, mod...)
	accept(t, s, event(1), []string{"alpha"}, store.Dedupe{})
	for _, k := range markers(prefix) {
		if err := raw.Del(ctx, k).Err(); err != nil {
			t.Fatalf("DEL format: %v", err)
		}
	}
	wantFormatErr(t, openErr(t, url, prefix, mod...), key(prefix), "without a format marker")

	// Another format's marker, on an empty keyspace or under a running
	// Store, whose accepts it stops.
	prefix = uniquePrefix(t)
	s = openStore(t, url, prefix, mod...)
	setAll(prefix, "0")
	wantFormatErr(t, openErr(t, url, prefix, mod...), key(prefix), `format "0"`)
	_, err := s.Accept(ctx, event(2), []string{"alpha"}, store.Dedupe{})
	wantFormatErr(t, err, key(prefix), `format "0"`)
	if err := s.Ping(ctx); !errors.Is(err, errFormat) {
		t.Fatalf("Ping after a refused accept: %v, want the format refusal", err)
	}
	for _, k := range markers(prefix) {
		pp := strings.TrimSuffix(k, formatKey)
		if n := raw.Exists(ctx, pp+"evidx").Val() + raw.Exists(ctx, pp+"depth").Val(); n != 0 {
			t.Fatalf("the refused accept wrote %d keys under %s", n, pp)
		}
	}
}

func TestFormatMarker(t *testing.T) {
	srv := testredis.Start(t)
	testFormat(t, srv.URL(), rawClient(t, srv.URL()))
}

func TestFormatMarkerPartitions(t *testing.T) {
	srv := testredis.Start(t)
	testFormat(t, srv.URL(), rawClient(t, srv.URL()), withPartitions(4))
}

// TestFormatPartitionsFixed: the number of partitions cannot change for
// existing data, either way, and the refusal says what to set.
func TestFormatPartitionsFixed(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	for _, tc := range []struct{ wrote, opens int }{{1, 4}, {4, 1}, {4, 8}, {8, 4}} {
		prefix := uniquePrefix(t)
		s := openStore(t, srv.URL(), prefix, withPartitions(tc.wrote))
		accept(t, s, event(1), []string{"alpha"}, store.Dedupe{})
		err := openErr(t, srv.URL(), prefix, withPartitions(tc.opens))
		if !errors.Is(err, errFormat) {
			t.Fatalf("%d partitions opening data of %d: %v, want the format refusal", tc.opens, tc.wrote, err)
		}
		for _, part := range []string{fmt.Sprintf("written with %d partitions", tc.wrote),
			fmt.Sprintf("configured with %d", tc.opens), fmt.Sprintf("store.redis.partitions: %d", tc.wrote)} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not say %q", err, part)
			}
		}
		// Nothing was written by the refused relay: the data's own number still opens.
		if err := openErr(t, srv.URL(), prefix, withPartitions(tc.wrote)); err != nil {
			t.Fatalf("reopen with %d partitions: %v", tc.wrote, err)
		}
		if _, err := s.Accept(ctx, event(2), []string{"alpha"}, store.Dedupe{}); err != nil {
			t.Fatalf("Accept on the first store after the refusal: %v", err)
		}
	}
}

func TestFormatMarkerCluster(t *testing.T) {
	c := testredis.StartCluster(t, false)
	o, err := goredis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatalf("ParseClusterURL: %v", err)
	}
	raw := goredis.NewClusterClient(o)
	t.Cleanup(func() { _ = raw.Close() })
	testFormat(t, c.URL(), raw, withCluster)
	testFormat(t, c.URL(), raw, withCluster, withPartitions(1))
}

// A Redis restarted empty (no persistence) under a running relay is marked
// again by the relay's next accept, so that a relay opening later accepts
// the keyspace instead of finding relay data without a marker.
func TestFormatMarkerAfterRedisLoss(t *testing.T) {
	srv := testredis.StartWith(t, "--appendonly", "no")
	if srv.External() {
		t.Skip("restarts the server")
	}
	prefix := uniquePrefix(t)
	s := openStore(t, srv.URL(), prefix)
	ctx := context.Background()
	accept(t, s, event(1), []string{"alpha"}, store.Dedupe{})

	srv.Restart()
	raw := rawClient(t, srv.URL())
	if n := raw.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("Redis restarted with %d keys, want none", n)
	}
	eventually(t, "Accept after the restart", func() error {
		_, err := s.Accept(ctx, event(2), []string{"alpha"}, store.Dedupe{})
		return err
	})
	wantMarker(t, raw, prefix)
	if err := openErr(t, srv.URL(), prefix); err != nil {
		t.Fatalf("Open after the running relay wrote again: %v", err)
	}
}

// A relay that opened while Redis was down checks the format on its first
// call once Redis answers.
func TestFormatCheckedOnceRedisAnswers(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	raw := rawClient(t, srv.URL())
	if err := raw.Set(context.Background(), prefix+formatKey, "0", 0).Err(); err != nil {
		t.Fatalf("SET format: %v", err)
	}
	srv.Stop()
	s := openStore(t, srv.URL(), prefix, func(o *Options) { o.DialTimeout = 200 * time.Millisecond })
	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var err error
	eventually(t, "a call that reaches Redis", func() error {
		_, err = s.Depths(ctx)
		if errors.Is(err, store.ErrUnavailable) {
			return err
		}
		return nil
	})
	wantFormatErr(t, err, prefix, `format "0"`)
	_, err = s.Lease(ctx, "alpha", 1, time.Hour)
	wantFormatErr(t, err, prefix, `format "0"`)
}
