package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// openRetaining opens a store in a new directory that keeps finished events
// for an hour and never sweeps on its own: the tests call sweepEvents with
// the time they need.
func openRetaining(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Retention:     time.Hour,
		SweepInterval: 24 * time.Hour,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		checkIntegrity(t, s)
		_ = s.Close()
	})
	return s
}

// leaseOne leases dest's next delivery, which must exist.
func leaseOne(t *testing.T, s *Store, dest string) store.Delivery {
	t.Helper()
	ds, err := s.Lease(context.Background(), dest, 1, time.Hour)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Lease %s = %d deliveries, %v; want 1", dest, len(ds), err)
	}
	return ds[0]
}

func sweepAt(t *testing.T, s *Store, now time.Time) int {
	t.Helper()
	n, err := s.sweepEvents(context.Background(), now)
	if err != nil {
		t.Fatalf("sweepEvents: %v", err)
	}
	return n
}

// owned lists the keys of every record the store holds for the event id
// and its deliveries, in any bucket retention deletes from.
func owned(t *testing.T, s *Store, rec store.EventRecord) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketEvents).Get([]byte(rec.Event.ID)) != nil {
			out = append(out, "events/"+rec.Event.ID)
		}
		for _, d := range rec.Deliveries {
			if tx.Bucket(bucketDeliveries).Get([]byte(d.ID)) != nil {
				out = append(out, "deliveries/"+d.ID)
			}
			c := tx.Bucket(bucketAttempts).Cursor()
			p := attemptPrefix(d.ID)
			for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
				out = append(out, fmt.Sprintf("attempts/%x", k))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRetentionDeletesOnlyFinishedEvents(t *testing.T) {
	s := openRetaining(t)
	ctx := context.Background()
	ok := store.Attempt{Status: 200, At: time.Now()}
	failed := store.Attempt{Status: 500, At: time.Now()}
	accept := func(n int, dests ...string) string {
		t.Helper()
		res, err := s.Accept(ctx, event(n), dests, store.Dedupe{})
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		return res.EventID
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	delivered := accept(1, "a")
	must(storetest.Complete(ctx, s, leaseOne(t, s, "a"), ok))
	retried := accept(2, "a")
	must(storetest.Retry(ctx, s, leaseOne(t, s, "a"), failed, time.Now()))
	must(storetest.Complete(ctx, s, leaseOne(t, s, "a"), ok))
	discarded := accept(3, "a")
	d := leaseOne(t, s, "a")
	must(storetest.DeadLetter(ctx, s, d, failed))
	must(s.DeleteDLQ(ctx, d.ID))
	half := accept(4, "a", "b")
	must(storetest.Complete(ctx, s, leaseOne(t, s, "a"), ok))
	dead := accept(5, "c")
	must(storetest.DeadLetter(ctx, s, leaseOne(t, s, "c"), failed))
	parked := accept(6)
	pending := accept(7, "d")

	all := map[string]store.EventRecord{}
	for _, id := range []string{delivered, retried, discarded, half, dead, parked, pending} {
		rec, err := s.Event(ctx, id)
		must(err)
		all[id] = rec
	}
	if len(owned(t, s, all[retried])) != 3 {
		t.Fatalf("the retried event holds %v, want its event (with its body), delivery and one older attempt", owned(t, s, all[retried]))
	}

	now := time.Now()
	if n := sweepAt(t, s, now.Add(59*time.Minute)); n != 0 {
		t.Fatalf("a sweep within the retention deleted %d events", n)
	}
	if n := sweepAt(t, s, now.Add(61*time.Minute)); n != 3 {
		t.Fatalf("a sweep past the retention deleted %d events, want 3", n)
	}
	for id, rec := range all {
		gone := id == delivered || id == retried || id == discarded
		left := owned(t, s, rec)
		_, err := s.Event(ctx, id)
		switch {
		case gone && (len(left) != 0 || !errors.Is(err, store.ErrNotFound)):
			t.Errorf("finished event %s: left %v, Event: %v", id, left, err)
		case !gone && err != nil:
			t.Errorf("kept event %s: Event: %v", id, err)
		}
	}
	found, _, err := s.FindEvents(ctx, store.EventQuery{}, store.Page{Limit: 100})
	must(err)
	var ids []string
	for _, f := range found {
		ids = append(ids, f.Event.ID)
	}
	slices.Sort(ids)
	want := []string{half, dead, parked, pending}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("FindEvents = %v, want the kept events %v", ids, want)
	}

	// The half-delivered event finishes now. The walk has passed it, so only
	// the next full pass deletes it, and only once its own retention is
	// over: a retention counts from the last delivery's end.
	must(storetest.Complete(ctx, s, leaseOne(t, s, "b"), ok))
	rec, err := s.Event(ctx, half)
	must(err)
	var finished time.Time
	for _, d := range rec.Deliveries {
		if d.UpdatedAt.After(finished) {
			finished = d.UpdatedAt
		}
	}
	if n := sweepAt(t, s, now.Add(62*time.Minute)); n != 0 {
		t.Fatalf("a sweep that did not walk back deleted %d events", n)
	}
	s.retire = retireWalk{} // the next sweep is a full pass
	early := finished.Add(time.Hour - time.Nanosecond)
	if n := sweepAt(t, s, early); n != 0 {
		t.Fatalf("a full pass a nanosecond before the retention ran out deleted %d events", n)
	}
	if n := sweepAt(t, s, early.Add(fullPassEvery)); n != 1 {
		t.Fatalf("the next full pass deleted %d events, want the half-delivered one", n)
	}
	if _, err := s.Event(ctx, half); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Event(%s) after the full pass: %v, want ErrNotFound", half, err)
	}
}

// One sweep deletes every finished event however many there are, a
// transaction per sweepLimit, past events it must keep.
func TestRetentionDeletesInBatches(t *testing.T) {
	s := openRetaining(t)
	ctx := context.Background()
	failed := store.Attempt{Status: 500, At: time.Now()}
	if _, err := s.Accept(ctx, event(0), []string{"dead"}, store.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	if err := storetest.DeadLetter(ctx, s, leaseOne(t, s, "dead"), failed); err != nil {
		t.Fatal(err)
	}
	const n = 2*sweepLimit + 5
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if _, err := s.Accept(ctx, event(i), []string{"a"}, store.Dedupe{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for done := 0; done < n; {
		ds, err := s.Lease(ctx, "a", 500, time.Hour)
		if err != nil || len(ds) == 0 {
			t.Fatalf("Lease after %d = %d deliveries, %v", done, len(ds), err)
		}
		for _, d := range ds {
			wg.Go(func() {
				if err := storetest.Complete(ctx, s, d, store.Attempt{Status: 200, At: time.Now()}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		done += len(ds)
	}
	commits := s.Commits()
	if got := sweepAt(t, s, time.Now().Add(2*time.Hour)); got != n {
		t.Fatalf("swept %d events, want %d", got, n)
	}
	if c := s.Commits() - commits; c != 3 {
		t.Errorf("the sweep took %d commits, want 3 (sweepLimit %d each)", c, sweepLimit)
	}
	if got := keys(t, s, bucketEvents); len(got) != 1 {
		t.Fatalf("%d events left, want the one with a dead delivery", len(got))
	}
	if got := len(keys(t, s, bucketDeliveries)); got != 1 {
		t.Fatalf("%d deliveries left, want the dead event's one", got)
	}
}

// The walk stops at the first event made within the retention by the time
// in its id, not by ReceivedAt, which a caller (or a clock step between
// ingest and Accept) may put ahead of the id: such an event must not keep
// every finished event after it.
func TestRetentionWalkIgnoresReceivedAt(t *testing.T) {
	s := openRetaining(t)
	ctx := context.Background()
	ok := store.Attempt{Status: 200, At: time.Now()}
	ahead := event(1)
	ahead.ReceivedAt = time.Now().Add(3 * time.Hour)
	for _, ev := range []store.Event{ahead, event(2)} {
		if _, err := s.Accept(ctx, ev, []string{"a"}, store.Dedupe{}); err != nil {
			t.Fatal(err)
		}
		if err := storetest.Complete(ctx, s, leaseOne(t, s, "a"), ok); err != nil {
			t.Fatal(err)
		}
	}
	if n := sweepAt(t, s, time.Now().Add(61*time.Minute)); n != 2 {
		t.Fatalf("swept %d events, want both: they finished over an hour before", n)
	}
}

// A record the walk cannot decode is kept and logged, and the walk goes on
// past it instead of stopping there at every sweep.
func TestRetentionSkipsUnreadableEvents(t *testing.T) {
	var logs testlog.Buffer
	s, err := Open(t.TempDir(), Options{
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
		Retention:     time.Hour,
		SweepInterval: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	bad := "evt_0000000000000000000000000" // sorts before every real id
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEvents).Put([]byte(bad), []byte{0xff, 0x00})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(ctx, event(1), []string{"a"}, store.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Complete(ctx, s, leaseOne(t, s, "a"), store.Attempt{Status: 200, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n := sweepAt(t, s, time.Now().Add(2*time.Hour)); n != 1 {
		t.Fatalf("swept %d events, want the readable one", n)
	}
	if got := keys(t, s, bucketEvents); !slices.Equal(got, []string{bad}) {
		t.Fatalf("events left: %v, want only the unreadable one", got)
	}
	if !strings.Contains(logs.String(), "event unreadable, kept") || !strings.Contains(logs.String(), bad) {
		t.Fatalf("log %q does not name the unreadable event", logs.String())
	}
}

// Workers make every kind of write (accepts with and without dedupe and
// destinations, parked replays, retries, dead letters, DLQ replays and
// deletes, outcomes handed over) while a sweeper deletes each event as
// soon as it is finished. Nothing live may go: the counters and the due
// indexes must match the records, and every reference must hold.
func TestRetentionUnderConcurrentWrites(t *testing.T) {
	s := openRetaining(t) // its cleanup checks the counters and due indexes
	ctx := context.Background()
	var deleted atomic.Int64
	done := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s.retireMu.Lock()
			s.retire = retireWalk{} // every sweep a full pass
			s.retireMu.Unlock()
			n, err := s.sweepEvents(ctx, time.Now().Add(time.Hour+time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			deleted.Add(int64(n))
		}
	})
	dests := []string{"a", "b", "c"}
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 150 {
				if err := churn(ctx, s, r, dests, fmt.Sprint(w, "/", i%50)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	workers.Wait()
	close(done)
	sweeper.Wait()
	if deleted.Load() == 0 {
		t.Fatal("the sweeper deleted nothing; the test proves nothing")
	}
	checkRefs(t, s)
}

// churn accepts one event for a random set of dests, sometimes parked and
// then replayed, and gives each destination's leased deliveries a random
// outcome.
func churn(ctx context.Context, s *Store, r *rand.Rand, dests []string, dedupe string) error {
	nd := r.IntN(len(dests) + 1)
	res, err := s.Accept(ctx, event(r.IntN(100)), dests[:nd], store.Dedupe{Key: dedupe, TTL: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	if nd == 0 && !res.Duplicate && r.IntN(2) == 0 {
		if _, err := s.ReplayParked(ctx, res.EventID, dests[r.IntN(len(dests)):][:1]); err != nil {
			return fmt.Errorf("ReplayParked: %w", err)
		}
	}
	for _, dest := range dests {
		ds, err := s.Lease(ctx, dest, 5, time.Minute)
		if err != nil {
			return fmt.Errorf("Lease: %w", err)
		}
		for _, d := range ds {
			if err := randomOutcome(ctx, s, r, d); err != nil {
				return fmt.Errorf("outcome of %s: %w", d.ID, err)
			}
		}
	}
	return nil
}

func randomOutcome(ctx context.Context, s *Store, r *rand.Rand, d store.Delivery) error {
	a := store.Attempt{Status: 200, At: time.Now()}
	switch r.IntN(4) {
	case 0:
		return storetest.Retry(ctx, s, d, a, time.Now())
	case 1:
		if err := storetest.DeadLetter(ctx, s, d, a); err != nil {
			return err
		}
		if r.IntN(2) == 0 {
			return s.ReplayDLQ(ctx, d.ID)
		}
		return s.DeleteDLQ(ctx, d.ID)
	}
	written := make(chan error, 1)
	s.Settle(ctx, d, storetest.Delivered(a), func(err error) { written <- err })
	return <-written
}

// checkRefs checks that every record the retention sweep deletes together
// is there together: each event has its deliveries, each delivery and
// attempt its owner, each DLQ entry a dead delivery and each parked entry a
// parked event.
func checkRefs(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		events, deliveries := tx.Bucket(bucketEvents), tx.Bucket(bucketDeliveries)
		owned := map[string]bool{}
		err := events.ForEach(func(k, _ []byte) error {
			ev, err := getEventMeta(tx, string(k))
			if err != nil {
				return err
			}
			for _, d := range ev.DeliveryIDs {
				if deliveries.Get([]byte(d)) == nil {
					return fmt.Errorf("event %s: delivery %s is missing", k, d)
				}
				owned[d] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		check := func(bucket []byte, owner func(k []byte) error) error {
			return tx.Bucket(bucket).ForEach(func(k, _ []byte) error { return owner(k) })
		}
		return errors.Join(
			check(bucketDeliveries, func(k []byte) error {
				if !owned[string(k)] {
					return fmt.Errorf("delivery %s has no event", k)
				}
				return nil
			}),
			check(bucketAttempts, func(k []byte) error {
				if id := k[:len(k)-5]; deliveries.Get(id) == nil {
					return fmt.Errorf("attempt %x has no delivery", k)
				}
				return nil
			}),
			check(bucketDLQ, func(k []byte) error {
				_, id := splitTimeKey(k)
				if d, err := getDelivery(tx, id); err != nil || d.State != store.StateDead {
					return fmt.Errorf("DLQ entry %s: not a dead delivery (%v)", id, err)
				}
				return nil
			}),
			check(bucketParked, func(k []byte) error {
				_, id := splitTimeKey(k)
				if ev, err := getEventMeta(tx, id); err != nil || !ev.Parked {
					return fmt.Errorf("parked entry %s: not a parked event (%v)", id, err)
				}
				return nil
			}),
		)
	})
	if err != nil {
		t.Fatalf("references: %v", err)
	}
}
