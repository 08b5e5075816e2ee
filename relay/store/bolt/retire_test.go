package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay/store"
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
		for _, name := range [][]byte{bucketEvents, bucketBodies} {
			if tx.Bucket(name).Get([]byte(rec.Event.ID)) != nil {
				out = append(out, string(name)+"/"+rec.Event.ID)
			}
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
	must(s.Complete(ctx, leaseOne(t, s, "a"), ok))
	retried := accept(2, "a")
	must(s.Retry(ctx, leaseOne(t, s, "a"), failed, time.Now()))
	must(s.Complete(ctx, leaseOne(t, s, "a"), ok))
	discarded := accept(3, "a")
	d := leaseOne(t, s, "a")
	must(s.DeadLetter(ctx, d, failed))
	must(s.DeleteDLQ(ctx, d.ID))
	half := accept(4, "a", "b")
	must(s.Complete(ctx, leaseOne(t, s, "a"), ok))
	dead := accept(5, "c")
	must(s.DeadLetter(ctx, leaseOne(t, s, "c"), failed))
	parked := accept(6)
	pending := accept(7, "d")

	all := map[string]store.EventRecord{}
	for _, id := range []string{delivered, retried, discarded, half, dead, parked, pending} {
		rec, err := s.Event(ctx, id)
		must(err)
		all[id] = rec
	}
	if len(owned(t, s, all[retried])) != 4 {
		t.Fatalf("the retried event holds %v, want its event, body, delivery and one older attempt", owned(t, s, all[retried]))
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
	must(s.Complete(ctx, leaseOne(t, s, "b"), ok))
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
	if err := s.DeadLetter(ctx, leaseOne(t, s, "dead"), failed); err != nil {
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
				if err := s.Complete(ctx, d, store.Attempt{Status: 200, At: time.Now()}); err != nil {
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
	if got := len(keys(t, s, bucketDeliveries)) + len(keys(t, s, bucketBodies)); got != 2 {
		t.Fatalf("%d deliveries and bodies left, want the dead event's two", got)
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
		if err := s.Complete(ctx, leaseOne(t, s, "a"), ok); err != nil {
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
	if err := s.Complete(ctx, leaseOne(t, s, "a"), store.Attempt{Status: 200, At: time.Now()}); err != nil {
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
