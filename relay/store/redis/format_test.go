package redis

import (
	"context"
	"errors"
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
	if v, err := raw.Get(context.Background(), prefix+formatKey).Result(); err != nil || v != formatVersion {
		t.Fatalf("format marker = %q, %v; want %q", v, err, formatVersion)
	}
}

// testFormat runs the marker's outcomes on one Redis (raw reaches its
// keys, url opens stores): an empty keyspace is marked, by relays opening
// together too; relay data without the marker or with another format's is
// refused at Open, and a marker changed under a running Store stops its
// accepts.
func testFormat(t *testing.T, url string, raw goredis.Cmdable, mod ...func(*Options)) {
	ctx := context.Background()
	cluster := len(mod) > 0
	key := func(prefix string) string {
		if cluster {
			return clusterPrefix(prefix)
		}
		return prefix
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
	wantMarker(t, raw, key(prefix))

	// A probe alone is no relay data: CheckWrite may write one into a
	// Redis restarted empty before its first event.
	prefix = uniquePrefix(t)
	if err := raw.Set(ctx, key(prefix)+"probe", 1, time.Minute).Err(); err != nil {
		t.Fatalf("SET probe: %v", err)
	}
	if err := openErr(t, url, prefix, mod...); err != nil {
		t.Fatalf("Open with only a probe key: %v", err)
	}
	wantMarker(t, raw, key(prefix))

	// Relay data without a marker (as every relay before markers wrote).
	prefix = uniquePrefix(t)
	s := openStore(t, url, prefix, mod...)
	accept(t, s, event(1), []string{"alpha"}, store.Dedupe{})
	if err := raw.Del(ctx, key(prefix)+formatKey).Err(); err != nil {
		t.Fatalf("DEL format: %v", err)
	}
	wantFormatErr(t, openErr(t, url, prefix, mod...), key(prefix), "without a format marker")

	// Another format's marker, on an empty keyspace or under a running
	// Store, whose accepts it stops.
	prefix = uniquePrefix(t)
	s = openStore(t, url, prefix, mod...)
	if err := raw.Set(ctx, key(prefix)+formatKey, "0", 0).Err(); err != nil {
		t.Fatalf("SET format: %v", err)
	}
	wantFormatErr(t, openErr(t, url, prefix, mod...), key(prefix), `format "0"`)
	_, err := s.Accept(ctx, event(2), []string{"alpha"}, store.Dedupe{})
	wantFormatErr(t, err, key(prefix), `format "0"`)
	if err := s.Ping(ctx); !errors.Is(err, errFormat) {
		t.Fatalf("Ping after a refused accept: %v, want the format refusal", err)
	}
	if n := raw.Exists(ctx, key(prefix)+"evidx", key(prefix)+"depth").Val(); n != 0 {
		t.Fatalf("the refused accept wrote %d keys", n)
	}
}

func TestFormatMarker(t *testing.T) {
	srv := testredis.Start(t)
	testFormat(t, srv.URL(), rawClient(t, srv.URL()))
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
