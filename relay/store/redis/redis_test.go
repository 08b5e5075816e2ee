package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// waitFor bounds every poll for something that becomes true with time.
const waitFor = 10 * time.Second

// eventually polls cond until it returns nil or waitFor passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, waitFor, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func event(n int) store.Event {
	return store.Event{
		WebhookID:   "1001",
		ContentType: "application/json",
		Body:        fmt.Appendf(nil, `{"mid":"1234-1333-%05d","status":"ANSWER",}`, n),
		ReceivedAt:  time.Now(),
	}
}

func accept(t testing.TB, s *Store, ev store.Event, dests []string, d store.Dedupe) store.AcceptResult {
	t.Helper()
	res, err := s.Accept(context.Background(), ev, dests, d)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return res
}

func leaseN(t testing.TB, s *Store, dest string, n int, lease time.Duration) []store.Delivery {
	t.Helper()
	ds, err := s.Lease(context.Background(), dest, n, lease)
	if err != nil {
		t.Fatalf("Lease(%s): %v", dest, err)
	}
	return ds
}

func ok200() store.Attempt {
	return store.Attempt{At: time.Now(), Duration: time.Millisecond, Status: 200}
}

// Two handles on one prefix are two relay processes: together they lease
// every delivery, and never one delivery twice while its lease lives.
func TestTwoHandlesNeverLeaseTwice(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	a, b := openStore(t, srv.URL(), prefix), openStore(t, srv.URL(), prefix)
	const events = 200
	for i := range events {
		accept(t, a, event(i), []string{"alpha"}, store.Dedupe{})
	}

	storetest.LeaseAllOnce(t, []store.Store{a, b, a, b, a, b}, "alpha", 5, events)
}

// A process that dies mid-delivery stops extending its lease; another
// process takes the delivery over, and the dead one's token is refused.
func TestLeaseTakeoverAcrossHandles(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	dying, survivor := openStore(t, srv.URL(), prefix), openStore(t, srv.URL(), prefix)
	ctx := context.Background()
	res := accept(t, dying, event(1), []string{"alpha"}, store.Dedupe{})

	first := leaseN(t, dying, "alpha", 1, 200*time.Millisecond)
	if len(first) != 1 {
		t.Fatalf("first Lease returned %d deliveries, want 1", len(first))
	}
	if ds := leaseN(t, survivor, "alpha", 1, time.Hour); len(ds) != 0 {
		t.Fatalf("survivor leased %s under a live lease", ds[0].ID)
	}
	var taken store.Delivery
	eventually(t, "takeover", func() error {
		ds := leaseN(t, survivor, "alpha", 1, time.Hour)
		if len(ds) == 0 {
			return errors.New("nothing leasable yet")
		}
		taken = ds[0]
		return nil
	})
	if taken.ID != first[0].ID || !bytes.Equal(taken.Event.Body, event(1).Body) {
		t.Fatalf("survivor took %s, want %s with its body", taken.ID, first[0].ID)
	}
	if err := storetest.Complete(ctx, dying, first[0], ok200()); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Complete with the expired lease: %v, want ErrLeaseLost", err)
	}
	if err := storetest.Complete(ctx, survivor, taken, ok200()); err != nil {
		t.Fatalf("Complete by the survivor: %v", err)
	}
	rec, err := dying.Event(ctx, res.EventID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if d := rec.Deliveries[0]; d.State != store.StateDelivered || d.Attempts != 1 || len(d.AttemptLog) != 1 {
		t.Fatalf("delivery = %+v with %d logged, want delivered once", d.Delivery, len(d.AttemptLog))
	}
}

// While Redis is down every method fails with ErrUnavailable; after a
// restart the same handle works again and finds what was written before.
func TestRedisDownAndBack(t *testing.T) {
	srv := testredis.Start(t)
	if srv.External() {
		t.Skip("kills the server")
	}
	prefix := uniquePrefix(t)
	short := func(o *Options) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		o.PoolSize = 4
	}
	s := openStore(t, srv.URL(), prefix, short)
	ctx := context.Background()
	dd := store.Dedupe{Key: "1001:before-kill", TTL: time.Hour}
	before := accept(t, s, event(1), []string{"alpha", "beta"}, dd)
	held := leaseN(t, s, "beta", 1, time.Hour)[0]
	// appendfsync everysec: what a SIGKILL may lose is the last second.
	time.Sleep(1100 * time.Millisecond)
	srv.Kill()

	calls := map[string]func(context.Context) error{
		"Accept": func(ctx context.Context) error {
			_, err := s.Accept(ctx, event(2), []string{"alpha"}, store.Dedupe{})
			return err
		},
		"Lease": func(ctx context.Context) error {
			_, err := s.Lease(ctx, "alpha", 1, time.Hour)
			return err
		},
		"ExtendLease":  func(ctx context.Context) error { return s.ExtendLease(ctx, held, time.Hour) },
		"Release":      func(ctx context.Context) error { return s.Release(ctx, held, time.Now()) },
		"Complete":     func(ctx context.Context) error { return storetest.Complete(ctx, s, held, ok200()) },
		"Retry":        func(ctx context.Context) error { return storetest.Retry(ctx, s, held, ok200(), time.Now()) },
		"DeadLetter":   func(ctx context.Context) error { return storetest.DeadLetter(ctx, s, held, ok200()) },
		"Event":        func(ctx context.Context) error { _, err := s.Event(ctx, before.EventID); return err },
		"ListDLQ":      func(ctx context.Context) error { _, _, err := s.ListDLQ(ctx, "", store.Page{}); return err },
		"ReplayDLQ":    func(ctx context.Context) error { return s.ReplayDLQ(ctx, held.ID) },
		"ListParked":   func(ctx context.Context) error { _, _, err := s.ListParked(ctx, store.Page{}); return err },
		"ReplayParked": func(ctx context.Context) error { _, err := s.ReplayParked(ctx, before.EventID, nil); return err },
		"Depths":       func(ctx context.Context) error { _, err := s.Depths(ctx); return err },
		"Ping":         func(ctx context.Context) error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(ctx, waitFor)
		start := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		t.Logf("%s with Redis down failed after %v: %v", name, time.Since(start).Round(time.Millisecond), err)
	}

	srv.Restart()
	eventually(t, "Ping after restart", func() error { return s.Ping(ctx) })
	// The script cache died with the server: this is EVAL's fallback path.
	res, err := s.Accept(ctx, event(1), []string{"alpha"}, dd)
	if err != nil || !res.Duplicate || res.EventID != before.EventID {
		t.Fatalf("Accept after restart = %+v, %v; want duplicate of %s", res, err, before.EventID)
	}
	rec, err := s.Event(ctx, before.EventID)
	if err != nil || !bytes.Equal(rec.Event.Body, event(1).Body) || len(rec.Deliveries) != 2 {
		t.Fatalf("Event after restart = %+v, %v", rec, err)
	}
	if err := storetest.Complete(ctx, s, held, ok200()); err != nil {
		t.Fatalf("Complete with a lease taken before the crash: %v", err)
	}
	if ds := leaseN(t, s, "alpha", 10, time.Hour); len(ds) != 1 || ds[0].EventID != before.EventID {
		t.Fatalf("Lease after restart = %d deliveries, want the one of %s", len(ds), before.EventID)
	}
}

// A relay may start before its Redis: Open succeeds, says so in the log,
// and the Store fails as unavailable until Redis answers, then works with
// scripts it never loaded at Open.
func TestOpenWhileRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	srv.Stop()
	var logs testlog.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	prefix := uniquePrefix(t)
	s := openStore(t, srv.URL(), prefix, func(o *Options) {
		o.DialTimeout = 200 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if !strings.Contains(logs.String(), "Redis does not answer at start") {
		t.Errorf("Open logged %q, want the warning that Redis does not answer", logs.String())
	}
	dd := store.Dedupe{Key: "1001:early", TTL: time.Hour}
	if _, err := s.Accept(ctx, event(1), []string{"alpha"}, dd); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Accept with Redis down: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v, want ErrUnavailable", err)
	}

	srv.Restart()
	eventually(t, "Ping once Redis is up", func() error { return s.Ping(ctx) })
	res := accept(t, s, event(1), []string{"alpha"}, dd)
	if res.Duplicate {
		t.Fatalf("Accept once Redis is up = %+v: the failed Accept must not have claimed", res)
	}
	wantMarker(t, rawClient(t, srv.URL()), prefix)
	if ds := leaseN(t, s, "alpha", 10, time.Hour); len(ds) != 1 || ds[0].EventID != res.EventID {
		t.Fatalf("Lease = %d deliveries, want the one of %s", len(ds), res.EventID)
	}
}

// Only an unreachable Redis lets Open go on: a Redis that answers with an
// error (here, a database it does not have) fails Open.
func TestOpenRefusedByRedisFails(t *testing.T) {
	srv := testredis.Start(t)
	url := strings.TrimSuffix(srv.URL(), "/0") + "/99"
	s, err := Open(context.Background(), Options{URL: url})
	if err == nil {
		_ = s.Close()
		t.Fatalf("Open(%s) succeeded, want Redis's refusal", url)
	}
	if errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "DB index") {
		t.Fatalf("Open(%s): %v, want Redis's DB index error, not ErrUnavailable", url, err)
	}
}

func TestOpenBadURLHidesPassword(t *testing.T) {
	tests := []string{
		"http://user:s3cret@127.0.0.1:6379/0",
		"redis://user:s3cret@127.0.0.1:6379/notadb",
		"redis://:s3cret@127.0.0.1:6379/0?dial_timeout=soon",
	}
	for _, raw := range tests {
		s, err := Open(context.Background(), Options{URL: raw})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Open(%q) error shows the password: %v", raw, err)
		}
	}
}

// An accept whose reply was lost is retried by go-redis with the same event
// id; the retry must report the first write, not queue the event twice.
func TestAcceptRetrySameIDWritesOnce(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ev := event(1)
	ev.ID = store.NewID("evt_")
	dd := store.Dedupe{Key: "1001:retried", TTL: time.Hour}
	for range 2 {
		res := accept(t, s, ev, []string{"alpha", "beta"}, dd)
		if res.Duplicate || res.EventID != ev.ID || res.Deliveries != 2 {
			t.Fatalf("Accept = %+v, want %s with 2 deliveries, not a duplicate", res, ev.ID)
		}
	}
	d, err := s.Depths(context.Background())
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	if d.Queued["alpha"] != 1 || d.Queued["beta"] != 1 {
		t.Fatalf("Depths.Queued = %v, want one delivery per destination", d.Queued)
	}
}

func TestBodyBytesExact(t *testing.T) {
	srv := testredis.Start(t)
	s := openStore(t, srv.URL(), uniquePrefix(t))
	body := make([]byte, 0, 512)
	for i := range 256 {
		body = append(body, byte(i), byte(255-i))
	}
	for _, b := range [][]byte{body, {}, {0}} {
		ev := event(0)
		ev.Body = b
		res := accept(t, s, ev, []string{"alpha"}, store.Dedupe{})
		rec, err := s.Event(context.Background(), res.EventID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		if !bytes.Equal(rec.Event.Body, b) {
			t.Fatalf("Event body = %x, want %x", rec.Event.Body, b)
		}
		d := leaseN(t, s, "alpha", 1, time.Hour)
		if len(d) != 1 || !bytes.Equal(d[0].Event.Body, b) {
			t.Fatalf("leased body differs from %x", b)
		}
	}
}

// Every key the store writes is under its prefix, and the keys of a
// finished event go away after the retention while dead, pending and parked
// events stay.
func TestKeysAndRetention(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t)
	raw := rawClient(t, srv.URL())
	s := openStore(t, srv.URL(), prefix, func(o *Options) { o.Retention = time.Second })
	ctx := context.Background()

	// Names unique to this test, so that scanning for them works on a
	// shared server (RELAY_TEST_REDIS_URL) too.
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	alpha, beta, gamma, delta := "alpha-"+tag, "beta-"+tag, "gamma-"+tag, "delta-"+tag
	dd := store.Dedupe{Key: "1001:done-" + tag, TTL: time.Hour}

	done := accept(t, s, event(1), []string{alpha, beta}, dd)
	dead := accept(t, s, event(2), []string{gamma}, store.Dedupe{})
	parked := accept(t, s, event(3), nil, store.Dedupe{})
	pending := accept(t, s, event(4), []string{delta}, store.Dedupe{})
	tokens := []string{tag, done.EventID, dead.EventID, parked.EventID, pending.EventID}

	var doneKeys []string
	for _, dest := range []string{alpha, beta} {
		d := leaseN(t, s, dest, 1, time.Hour)[0]
		if err := storetest.Complete(ctx, s, d, ok200()); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		doneKeys = append(doneKeys, prefix+"dlv:"+d.ID, prefix+"att:"+d.ID)
		tokens = append(tokens, d.ID)
		if dest == alpha {
			// One delivery still out: the event must not expire yet.
			if ttl := raw.PTTL(ctx, prefix+"ev:"+done.EventID).Val(); ttl != -1 {
				t.Fatalf("event with a pending delivery has TTL %v, want none", ttl)
			}
		}
	}
	doneKeys = append(doneKeys, prefix+"ev:"+done.EventID)
	g := leaseN(t, s, gamma, 1, time.Hour)[0]
	if err := storetest.DeadLetter(ctx, s, g, store.Attempt{At: time.Now(), Status: 500}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}

	for _, tok := range tokens {
		keys, err := raw.Keys(ctx, "*"+tok+"*").Result()
		if err != nil {
			t.Fatalf("KEYS: %v", err)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix) {
				t.Errorf("key %q is outside the prefix %q", k, prefix)
			}
		}
	}
	fixed := []string{"depth", "seq", "parked", "dlq", "evidx", "evexp", "format"}
	if n := raw.Exists(ctx, fixed...).Val(); n != 0 {
		t.Errorf("%d of %v exist without the prefix", n, fixed)
	}

	eventually(t, "finished event expires", func() error {
		n, err := raw.Exists(ctx, doneKeys...).Result()
		if err != nil || n != 0 {
			return fmt.Errorf("%d of %v still exist (%v)", n, doneKeys, err)
		}
		return nil
	})
	if _, err := s.Event(ctx, done.EventID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Event of an expired event: %v, want ErrNotFound", err)
	}
	if ttl := raw.PTTL(ctx, prefix+formatKey).Val(); ttl != -1 {
		t.Fatalf("format marker has TTL %v after the retention, want none", ttl)
	}
	if res := accept(t, s, event(1), []string{alpha}, dd); !res.Duplicate {
		t.Fatal("the dedupe claim expired with the event; it has its own TTL")
	}
	for _, id := range []string{dead.EventID, parked.EventID, pending.EventID} {
		if _, err := s.Event(ctx, id); err != nil {
			t.Fatalf("Event(%s) after the retention: %v", id, err)
		}
		if ttl := raw.PTTL(ctx, prefix+"ev:"+id).Val(); ttl != -1 {
			t.Fatalf("unfinished event %s has TTL %v, want none", id, ttl)
		}
	}
}

// Open loads every script, so calls are EVALSHA hits; a fallback to EVAL
// would send each script's source on every call.
func TestScriptsRunFromCache(t *testing.T) {
	srv := testredis.Start(t)
	raw := rawClient(t, srv.URL())
	s := openStore(t, srv.URL(), uniquePrefix(t))
	ctx := context.Background()
	if err := raw.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	res := accept(t, s, event(1), []string{"alpha"}, store.Dedupe{Key: "k", TTL: time.Hour})
	d := leaseN(t, s, "alpha", 1, time.Hour)[0]
	if err := storetest.Complete(ctx, s, d, ok200()); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if _, err := s.Event(ctx, res.EventID); err != nil {
		t.Fatalf("Event: %v", err)
	}
	stats, err := raw.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	if !strings.Contains(stats, "cmdstat_evalsha:calls=4,") || strings.Contains(stats, "cmdstat_eval:") {
		t.Fatalf("want 4 EVALSHA hits and no EVAL, got:\n%s", stats)
	}
}
