package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func event(n int) store.Event {
	return store.Event{
		WebhookID:   "1001",
		ContentType: "application/json",
		Body:        storetest.SeedBody(n),
	}
}

func TestGroupCommitBatches(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	const goroutines, each = 200, 5

	before := s.commits.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range each {
				key := store.Dedupe{Key: fmt.Sprintf("k-%d-%d", g, i), TTL: time.Hour}
				if _, err := s.Accept(context.Background(), event(i), []string{"a", "b"}, key); err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()

	const accepts = goroutines * each
	commits := s.commits.Load() - before
	t.Logf("%d accepts in %d commits", accepts, commits)
	if commits >= accepts {
		t.Fatalf("%d accepts took %d commits; group commit did not batch", accepts, commits)
	}
	wantCounts(t, s, map[string]int{"a": accepts, "b": accepts})
}

// runBatch commits prepared ops as one batch, the way the committer does,
// and returns each op's answer.
func runBatch(t *testing.T, s *Store, applies ...func(*batch) error) []error {
	t.Helper()
	ops := make([]*op, len(applies))
	for i, apply := range applies {
		ops[i] = &op{ctx: context.Background(), apply: apply, done: make(chan error, 1)}
	}
	s.commit(ops)
	errs := make([]error, len(ops))
	for i, o := range ops {
		errs[i] = <-o.done
	}
	return errs
}

func mustAcceptOp(t *testing.T, ev store.Event, dests []string, d store.Dedupe) (func(*batch) error, *store.AcceptResult) {
	t.Helper()
	return acceptOp(time.Now(), ev, dests, d)
}

func TestBatchOneDedupeWinner(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	d := store.Dedupe{Key: "1001:same", TTL: time.Hour}
	first, r1 := mustAcceptOp(t, event(1), []string{"a"}, d)
	second, r2 := mustAcceptOp(t, event(2), []string{"a"}, d)

	before := s.commits.Load()
	for i, err := range runBatch(t, s, first, second) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if n := s.commits.Load() - before; n != 1 {
		t.Fatalf("one batch took %d commits", n)
	}
	if r1.Duplicate || !r2.Duplicate || r2.EventID != r1.EventID {
		t.Fatalf("results %+v and %+v, want the first to win and the second to be its duplicate", *r1, *r2)
	}
	wantCounts(t, s, map[string]int{"a": 1})
}

func TestBatchFailedOpLeavesOthers(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	ok1, r1 := mustAcceptOp(t, event(1), []string{"a"}, store.Dedupe{})
	// bbolt refuses a key this long, after the op has written its event:
	// the transaction must roll back and run again without it.
	huge := store.Dedupe{Key: strings.Repeat("k", bbolt.MaxKeySize+1), TTL: time.Hour}
	badEvent := event(2)
	badEvent.ID = "evt_bad"
	bad, _ := mustAcceptOp(t, badEvent, []string{"a"}, huge)
	ok2, r2 := mustAcceptOp(t, event(3), []string{"a", "b"}, store.Dedupe{})

	errs := runBatch(t, s, ok1, bad, ok2)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("good ops failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || errors.Is(errs[1], store.ErrUnavailable) {
		t.Fatalf("bad op: err = %v, want its own error, not ErrUnavailable", errs[1])
	}
	for _, id := range []string{r1.EventID, r2.EventID} {
		if _, err := s.Event(context.Background(), id); err != nil {
			t.Fatalf("Event(%s): %v", id, err)
		}
	}
	if _, err := s.Event(context.Background(), badEvent.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Event of the failed op: err = %v, want ErrNotFound", err)
	}
	wantCounts(t, s, map[string]int{"a": 2, "b": 1})
}

// An outcome is applied again when another write of its transaction fails;
// the second run must start from the record as leased, not from the first
// run's changes, which were rolled back.
func TestOutcomeAppliedTwiceStartsFromLeasedRecord(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	res := acceptOne(t, s, "a")
	ds, err := s.Lease(ctx, "a", 1, time.Minute)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Lease: %d deliveries, %v", len(ds), err)
	}
	due := time.Now().Add(time.Hour)
	retry := s.newOutcome(ctx, ds[0], change{kind: changeRetry, a: store.Attempt{At: time.Now(), Status: 500}, due: due}).write
	huge := store.Dedupe{Key: strings.Repeat("k", bbolt.MaxKeySize+1), TTL: time.Hour}
	bad, _ := mustAcceptOp(t, event(2), []string{"a"}, huge)

	errs := runBatch(t, s, retry, bad)
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("errors %v, want the retry to commit and the bad accept to fail", errs)
	}
	rec, err := s.Event(ctx, res.EventID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	d := rec.Deliveries[0]
	if d.Attempts != 1 || !d.DueAt.Equal(due) || len(d.AttemptLog) != 1 || d.AttemptLog[0].N != 1 {
		t.Fatalf("after one retry: attempts %d, due %v (want %v), log %+v", d.Attempts, d.DueAt, due, d.AttemptLog)
	}
	wantCounts(t, s, map[string]int{"a": 1})
}

func TestLeaseWritesNothing(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Accept(ctx, event(i), []string{"a"}, store.Dedupe{}); err != nil {
			t.Fatalf("Accept: %v", err)
		}
	}
	before := s.commits.Load()
	ds, err := s.Lease(ctx, "a", 3, time.Hour)
	if err != nil || len(ds) != 3 {
		t.Fatalf("Lease = %d deliveries, %v; want 3", len(ds), err)
	}
	for _, d := range ds {
		if err := s.ExtendLease(ctx, d, 2*time.Hour); err != nil {
			t.Fatalf("ExtendLease: %v", err)
		}
	}
	if n := s.commits.Load() - before; n != 0 {
		t.Fatalf("Lease and ExtendLease committed %d transactions, want 0", n)
	}
}

func TestSweepClaims(t *testing.T) {
	clk := clock.NewFake(time.Now())
	// No sweep of its own: the test runs one.
	s := openWith(t, t.TempDir(), Options{Clock: clk, SweepInterval: 24 * time.Hour})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	claims := []struct {
		key string
		ttl time.Duration
	}{
		{"expires", time.Minute},
		{"reclaimed", time.Minute},
		{"lives", time.Hour},
		{"forever", 0},
	}
	for i, c := range claims {
		if _, err := s.Accept(ctx, event(i), []string{"a"}, store.Dedupe{Key: c.key, TTL: c.ttl}); err != nil {
			t.Fatalf("Accept %s: %v", c.key, err)
		}
	}
	clk.Advance(2 * time.Minute)
	// Claimed again after expiry: the old index entry must not delete it.
	res, err := s.Accept(ctx, event(9), []string{"a"}, store.Dedupe{Key: "reclaimed", TTL: time.Hour})
	if err != nil || res.Duplicate {
		t.Fatalf("Accept of an expired key = %+v, %v; want accepted", res, err)
	}

	n, err := s.sweepClaims(ctx)
	if err != nil {
		t.Fatalf("sweepClaims: %v", err)
	}
	if n != 1 {
		t.Fatalf("swept %d claims, want 1", n)
	}
	if got, want := keys(t, s, bucketDedupe), []string{"forever", "lives", "reclaimed"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("claims after sweep = %v, want %v", got, want)
	}
	if got := keys(t, s, bucketDedupeExp); len(got) != 2 {
		t.Fatalf("expiry index has %d entries after sweep, want 2 (lives, reclaimed)", len(got))
	}
	res, err = s.Accept(ctx, event(9), []string{"a"}, store.Dedupe{Key: "reclaimed", TTL: time.Hour})
	if err != nil || !res.Duplicate {
		t.Fatalf("Accept of a reclaimed key after sweep = %+v, %v; want duplicate", res, err)
	}
}

func keys(t *testing.T, s *Store, bucket []byte) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("keys of %s: %v", bucket, err)
	}
	return out
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
		want  string
	}{
		{"dir is a file", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "file")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a directory"},
		{"locked by another open", func(t *testing.T, dir string) string {
			s := openTest(t, dir)
			t.Cleanup(func() { _ = s.Close() })
			return dir
		}, "another relay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t, t.TempDir())
			s, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "relay-data")
	s := openTest(t, dir)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("dir mode %v, want 0700", perm)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("no %s: %v", FileName, err)
	}
}

// wantCounts checks the queued counters against the due indexes and the
// stored deliveries, so a counter can never drift from what it counts.
func wantCounts(t testing.TB, s *Store, queued map[string]int) {
	t.Helper()
	d, err := s.Depths(context.Background())
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	for dest, n := range queued {
		if d.Queued[dest] != n {
			t.Fatalf("Depths.Queued[%s] = %d, want %d", dest, d.Queued[dest], n)
		}
	}
	checkIntegrity(t, s)
}

// checkIntegrity recounts everything the counters summarize.
func checkIntegrity(t testing.TB, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		want := map[string]int{}
		count := func(key []byte, n int) {
			if n != 0 {
				want[string(key)] += n
			}
		}
		err := tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
			rec, err := getDelivery(tx, string(k))
			if err != nil {
				return err
			}
			switch rec.State {
			case store.StatePending:
				count(queuedKey(rec.Destination), 1)
				if q := tx.Bucket(bucketQueue).Bucket([]byte(rec.Destination)); q == nil || q.Get(dueKey(&rec.Delivery)) == nil {
					return fmt.Errorf("pending delivery %s is not in the due index", k)
				}
			case store.StateDead:
				count(deadKey(rec.Destination), 1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		count(parkedCountKey, tx.Bucket(bucketParked).Stats().KeyN)
		err = tx.Bucket(bucketQueue).ForEachBucket(func(dest []byte) error {
			if n := tx.Bucket(bucketQueue).Bucket(dest).Stats().KeyN; n != want[string(queuedKey(string(dest)))] {
				return fmt.Errorf("due index of %s has %d entries, %d deliveries are pending", dest, n, want[string(queuedKey(string(dest)))])
			}
			return nil
		})
		if err != nil {
			return err
		}
		got := map[string]int{}
		err = tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			got[string(k)] = int(binary.BigEndian.Uint64(v))
			return nil
		})
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("counters %v, recounted %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("integrity: %v", err)
	}
}

// Leasing walks a destination's due index from after the last delivery it
// leased. A lease that expires behind that mark is found again when the
// mark lapses (fromFor), not only once the rest of the backlog is gone.
func TestLeaseMarkAndExpiredLeaseBehindIt(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := openClocked(t, t.TempDir(), clk)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var ids []string
	for i := range 8 {
		res, err := s.Accept(ctx, event(i), []string{"a"}, store.Dedupe{})
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		ids = append(ids, res.EventID)
	}
	lease := func(n int, d time.Duration) []string {
		t.Helper()
		ds, err := s.Lease(ctx, "a", n, d)
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.EventID)
		}
		return got
	}
	want := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: leased %v, want %v", what, got, want)
		}
	}
	want("first two, short lease", lease(2, 20*time.Millisecond), ids[0:2])
	want("next two", lease(2, time.Minute), ids[2:4])
	clk.Advance(40 * time.Millisecond) // the first two leases expire
	want("while the mark holds", lease(2, time.Minute), ids[4:6])
	clk.Advance(fromFor) // the mark lapses
	want("after the mark lapsed: the expired ones, oldest first", lease(2, time.Minute), ids[0:2])
	want("the rest", lease(8, time.Minute), ids[6:8])
	want("nothing left", lease(8, time.Minute), nil)
}

// A delivery's newest attempt lives in its record (deliveryRec.Last), the
// older ones in the attempts bucket; the log reads them in order.
func TestAttemptLogSplitsRecordAndBucket(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	res := acceptOne(t, s, "a")
	attempt := func(status int) {
		t.Helper()
		ds, err := s.Lease(ctx, "a", 1, time.Minute)
		if err != nil || len(ds) != 1 {
			t.Fatalf("Lease: %d deliveries, %v", len(ds), err)
		}
		a := store.Attempt{At: time.Now(), Status: status, Response: fmt.Sprintf("answer %d", status)}
		if status == 200 {
			err = storetest.Complete(ctx, s, ds[0], a)
		} else {
			err = storetest.Retry(ctx, s, ds[0], a, time.Now())
		}
		if err != nil {
			t.Fatalf("outcome %d: %v", status, err)
		}
	}
	wantLog := func(statuses ...int) {
		t.Helper()
		rec, err := s.Event(ctx, res.EventID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		log := rec.Deliveries[0].AttemptLog
		if len(log) != len(statuses) {
			t.Fatalf("attempt log %+v, want %d attempts", log, len(statuses))
		}
		for i, a := range log {
			if a.N != i+1 || a.Status != statuses[i] || a.Response != fmt.Sprintf("answer %d", statuses[i]) {
				t.Fatalf("attempt %d = %+v, want number %d, status %d", i, a, i+1, statuses[i])
			}
		}
	}
	inBucket := func() int {
		t.Helper()
		n := 0
		err := s.db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketAttempts).ForEach(func(k, v []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	attempt(500)
	wantLog(500)
	if n := inBucket(); n != 0 {
		t.Fatalf("after one attempt the attempts bucket holds %d records, want 0 (the attempt is in the delivery record)", n)
	}
	attempt(503)
	wantLog(500, 503)
	if n := inBucket(); n != 1 {
		t.Fatalf("after two attempts the attempts bucket holds %d records, want 1", n)
	}
	attempt(200)
	wantLog(500, 503, 200)
	if n := inBucket(); n != 2 {
		t.Fatalf("after three attempts the attempts bucket holds %d records, want 2", n)
	}
}

// acceptOne queues one event for dest.
func acceptOne(t *testing.T, s *Store, dest string) store.AcceptResult {
	t.Helper()
	res, err := s.Accept(context.Background(), event(1), []string{dest}, store.Dedupe{})
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return res
}

// The sweep runs on the store's clock: once SweepInterval has passed on
// it, expired dedupe claims are gone, with no real time passing.
func TestSweepRunsOnTheClock(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := openClocked(t, t.TempDir(), clk)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Accept(t.Context(), event(1), []string{"a"}, store.Dedupe{Key: "k", TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultSweepInterval)
	// The sweep runs on the store's goroutine; wait for its write.
	for deadline := time.Now().Add(10 * time.Second); len(keys(t, s, bucketDedupe)) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the claim is still there 10s after the sweep was due")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := keys(t, s, bucketDedupeExp); len(got) != 0 {
		t.Fatalf("expiry index after the sweep: %q, want empty", got)
	}
}
