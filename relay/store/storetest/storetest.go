package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Opener opens the backend's storage; every call opens the SAME underlying
// storage again (a reopen), returning a new handle. The caller closes the
// previous handle before calling it again.
type Opener func(t testing.TB) store.Store

// Run runs the whole conformance suite as subtests. newBackend is called once
// per subtest and returns an Opener onto fresh, isolated storage (new temp dir
// / new key prefix). Subtests run in parallel.
func Run(t *testing.T, newBackend func(t testing.TB) Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"AcceptStoresEvent", testAcceptStoresEvent},
		{"AcceptNoDestsParks", testAcceptNoDestsParks},
		{"DedupeDuplicate", testDedupeDuplicate},
		{"DedupeTTLExpiry", testDedupeTTLExpiry},
		{"DedupeKeyIsOpaque", testDedupeKeyIsOpaque},
		{"DedupeConcurrentOneWinner", testDedupeConcurrent},
		{"LeaseDueOldestFirstAtMostN", testLeaseOrderAndLimit},
		{"LeaseFillsEvent", testLeaseFillsEvent},
		{"LeaseHidesDelivery", testLeaseHides},
		{"LeaseExpiryReturnsDelivery", testLeaseExpiry},
		{"LeaseConcurrentNoDoubleLease", testLeaseConcurrent},
		{"StaleLeaseToken", testStaleLease},
		{"ExpiredLeaseRefused", testExpiredLease},
		{"Retry", testRetry},
		{"ExtendLease", testExtendLease},
		{"Release", testRelease},
		{"DeadLetter", testDeadLetter},
		{"Settle", testSettle},
		{"ListDLQFilterAndPages", testListDLQPages},
		{"ReplayDLQ", testReplayDLQ},
		{"DeleteDLQ", testDeleteDLQ},
		{"Delivery", testDelivery},
		{"FindEvents", testFindEvents},
		{"BadCursor", testBadCursor},
		{"Parked", testParked},
		{"ListParkedPages", testListParkedPages},
		{"ExpireParked", testExpireParked},
		{"ExpireParkedMany", testExpireParkedMany},
		{"EventRecord", testEventRecord},
		{"DepthsLifecycle", testDepthsLifecycle},
		{"PersistAcrossReopen", testPersist},
		{"LeaseAfterReopen", testLeaseAfterReopen},
		{"Closed", testClosed},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

// Names of destinations used throughout the suite.
const (
	destA = "alpha"
	destB = "beta"
)

// long is a lease or due offset that no test run comes near, so assertions
// that something stays hidden do not depend on the machine's speed.
const long = time.Hour

// waitFor bounds every poll for something that becomes true with time.
const waitFor = 10 * time.Second

// openStore opens a handle and closes it at the end of the test unless the
// test closed it already.
func openStore(t testing.TB, open Opener) store.Store {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("Opener returned a nil store")
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newEvent builds an event the way ingest does: original bytes, no id.
func newEvent(webhookID string, body []byte) store.Event {
	return store.Event{
		WebhookID:   webhookID,
		ContentType: "application/json",
		Body:        body,
		ReceivedAt:  time.Now().Truncate(time.Millisecond),
	}
}

// SeedBody is a callback as the seed provider sends it (shared/seed-callback.md,
// about 350 bytes): a trailing comma and numbers too long for float64. n makes
// each body distinct (it is the end of the mid); every n gives the same size.
// Tests and benchmarks of other packages use it too.
func SeedBody(n int) []byte {
	return fmt.Appendf(nil, `{
      "bridge": 918068281234,
      "from": 918919521234,
      "to": 918867131234,
      "source": "OBD",
      "mid": "1234-1333-%05d",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}`, n)
}

func mustAccept(t testing.TB, s store.Store, ev store.Event, dests []string, d store.Dedupe) store.AcceptResult {
	t.Helper()
	res, err := s.Accept(context.Background(), ev, dests, d)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if res.Duplicate {
		t.Fatalf("Accept: unexpected duplicate of %s", res.EventID)
	}
	if res.EventID == "" {
		t.Fatal("Accept: empty EventID")
	}
	if res.Deliveries != len(dests) {
		t.Fatalf("Accept: Deliveries = %d, want %d", res.Deliveries, len(dests))
	}
	return res
}

// acceptN accepts n distinct events to dests, one after another, and returns
// their ids in accept order.
func acceptN(t testing.TB, s store.Store, n int, dests ...string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = mustAccept(t, s, newEvent("1001", SeedBody(i)), dests, store.Dedupe{}).EventID
	}
	return ids
}

func mustLease(t testing.TB, s store.Store, dest string, n int, lease time.Duration) []store.Delivery {
	t.Helper()
	ds, err := s.Lease(context.Background(), dest, n, lease)
	if err != nil {
		t.Fatalf("Lease(%q, %d): %v", dest, n, err)
	}
	if len(ds) > n {
		t.Fatalf("Lease(%q, %d) returned %d deliveries", dest, n, len(ds))
	}
	for _, d := range ds {
		if d.Destination != dest {
			t.Fatalf("Lease(%q) returned delivery %s of destination %q", dest, d.ID, d.Destination)
		}
		if d.Lease == "" {
			t.Fatalf("Lease(%q) returned delivery %s without a lease token", dest, d.ID)
		}
	}
	return ds
}

// leaseOne leases exactly one delivery of dest.
func leaseOne(t testing.TB, s store.Store, dest string, lease time.Duration) store.Delivery {
	t.Helper()
	ds := mustLease(t, s, dest, 1, lease)
	if len(ds) != 1 {
		t.Fatalf("Lease(%q, 1) returned %d deliveries, want 1", dest, len(ds))
	}
	return ds[0]
}

// leaseNone asserts that nothing of dest is leasable now.
func leaseNone(t testing.TB, s store.Store, dest string) {
	t.Helper()
	if ds := mustLease(t, s, dest, 100, long); len(ds) != 0 {
		t.Fatalf("Lease(%q) returned %d deliveries (first %s), want none", dest, len(ds), ds[0].ID)
	}
}

// eventuallyLease polls until one delivery of dest is leasable.
func eventuallyLease(t testing.TB, s store.Store, dest string, lease time.Duration) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if ds := mustLease(t, s, dest, 1, lease); len(ds) == 1 {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery of %q became leasable within %v", dest, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustEvent(t testing.TB, s store.Store, id string) store.EventRecord {
	t.Helper()
	rec, err := s.Event(context.Background(), id)
	if err != nil {
		t.Fatalf("Event(%s): %v", id, err)
	}
	if rec.Event.ID != id {
		t.Fatalf("Event(%s) returned event %q", id, rec.Event.ID)
	}
	return rec
}

// deliveryOf finds the delivery with the given id in an event record.
func deliveryOf(t testing.TB, rec store.EventRecord, id string) store.DeliveryRecord {
	t.Helper()
	for _, d := range rec.Deliveries {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("event %s has no delivery %s", rec.Event.ID, id)
	return store.DeliveryRecord{}
}

// wantDepths compares depths, treating a missing destination as zero.
func wantDepths(t testing.TB, s store.Store, queued, dead map[string]int, parked int) {
	t.Helper()
	got, err := s.Depths(context.Background())
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	if !sameCounts(got.Queued, queued) || !sameCounts(got.Dead, dead) || got.Parked != parked {
		t.Fatalf("Depths = queued %v dead %v parked %d, want queued %v dead %v parked %d",
			got.Queued, got.Dead, got.Parked, queued, dead, parked)
	}
}

func sameCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func wantBody(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: body = %q, want %q", what, got, want)
	}
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func deliveryIDs(ds []store.Delivery) []string {
	return ids(ds, func(d store.Delivery) string { return d.ID })
}

func eventIDsOf(ds []store.Delivery) []string {
	return ids(ds, func(d store.Delivery) string { return d.EventID })
}

func wantIDs(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// attempt builds an attempt record as a worker would.
func attempt(status int, errText string) store.Attempt {
	return store.Attempt{
		At:       time.Now().Truncate(time.Millisecond),
		Duration: 42 * time.Millisecond,
		Status:   status,
		Error:    errText,
		Response: fmt.Sprintf("response to status %d", status),
	}
}

// Acceptor is the part of a store that Fill needs.
type Acceptor interface {
	Accept(ctx context.Context, ev store.Event, dests []string, d store.Dedupe) (store.AcceptResult, error)
}

// Fill queues n seed-bodied events for dest from 64 goroutines, so that a
// store's group commit takes them in large batches, for benchmarks that
// start from a backlog.
func Fill(tb testing.TB, s Acceptor, n int, dest string) {
	tb.Helper()
	const writers = 64
	body := SeedBody(0)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: body, ReceivedAt: time.Now()}
				if _, err := s.Accept(context.Background(), ev, []string{dest}, store.Dedupe{}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Leaser is the part of a store that Drain needs.
type Leaser interface {
	Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error)
}

// Drain leases n deliveries of dest as a dispatcher of concurrency conc
// does (batches of 2*conc, a minute's lease) and hands each to one of conc
// workers, which call finish; it returns when every finish has returned,
// or fails tb when a Lease fails or finds nothing due before n. Benchmarks
// of a store's outcome path use it.
func Drain(tb testing.TB, s Leaser, dest string, n, conc int, finish func(store.Delivery)) {
	tb.Helper()
	jobs := make(chan store.Delivery, 2*conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for d := range jobs {
				finish(d)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	for left := n; left > 0; {
		ds, err := s.Lease(context.Background(), dest, min(left, 2*conc), time.Minute)
		if err != nil {
			tb.Error(err)
			return
		}
		if len(ds) == 0 {
			tb.Errorf("Drain: %d deliveries of %s left to lease, none due", left, dest)
			return
		}
		for _, d := range ds {
			jobs <- d
		}
		left -= len(ds)
	}
}
