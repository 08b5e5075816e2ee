package bolt

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// Run with:
//
//	go test -run '^$' -bench 'Accept|Naive' -benchtime 3s ./relay/store/bolt/
//
// Every benchmark writes the same data per accept (a seed-sized body, two
// destinations, a unique dedupe key) with an fsync before the call returns;
// they differ only in how writes share transactions.

// parallelism is goroutines per GOMAXPROCS; ingest sees many concurrent
// requests, so the interesting numbers are the higher ones.
var parallelism = []int{1, 8, 32, 128}

// BenchmarkAcceptParallel measures Accept through the group committer.
func BenchmarkAcceptParallel(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := openBench(b)
			benchAccepts(b, s, p, func(apply func(*batch) error) error {
				return s.submit(context.Background(), apply)
			})
		})
	}
}

// BenchmarkNaiveBatchPerRequest is the baseline: each accept is its own
// db.Batch call, bbolt's built-in coalescing with its 10ms delay timer.
func BenchmarkNaiveBatchPerRequest(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := openBench(b)
			benchAccepts(b, s, p, func(apply func(*batch) error) error {
				return s.db.Batch(func(tx *bbolt.Tx) error {
					return apply(&batch{tx: tx, now: time.Now()})
				})
			})
		})
	}
}

// BenchmarkNaiveUpdatePerRequest is the plainest baseline: one db.Update,
// so one fsync, per accept.
func BenchmarkNaiveUpdatePerRequest(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := openBench(b)
			benchAccepts(b, s, p, func(apply func(*batch) error) error {
				return s.db.Update(func(tx *bbolt.Tx) error {
					return apply(&batch{tx: tx, now: time.Now()})
				})
			})
		})
	}
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchAccepts runs accepts from p goroutines per CPU through run and reports
// accepts/s and, for the committer, accepts per transaction.
func benchAccepts(b *testing.B, s *Store, p int, run func(func(*batch) error) error) {
	var seq atomic.Int64
	body := storetest.SeedBody(0)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(p)
	commits, pages := s.commits.Load(), s.PagesWritten()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: body}
			d := store.Dedupe{Key: fmt.Sprintf("1001:mid-%d", n), TTL: 24 * time.Hour}
			apply, res := acceptOp(time.Now(), ev, []string{"acme-crm", "acme-archive"}, d)
			if err := run(apply); err != nil || res.Duplicate {
				b.Errorf("accept %d: %+v, %v", n, res, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	if c := s.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "accepts/commit")
		// Pages written (one pwrite each) per commit, the meta page aside.
		b.ReportMetric(float64(s.PagesWritten()-pages)/float64(c), "pages/commit")
	}
}

// BenchmarkLeaseComplete measures the embedded store's share of a delivery,
// without HTTP: a queue of b.N deliveries is filled first (not timed), then
// one leaser takes batches of 16 (twice the concurrency, as the dispatcher
// leases ahead), 8 workers hand each delivery's success to Settle as
// the dispatcher's workers do, and the clock stops when every outcome is
// durable. Reported per delivery: this process's CPU time (the fsyncs'
// system time included); and deliveries and pages written per commit.
//
//	go test -run '^$' -bench LeaseComplete -benchtime 100000x ./relay/store/bolt/
func BenchmarkLeaseComplete(b *testing.B) {
	const conc = 8
	s := openBench(b)
	ctx := context.Background()
	storetest.Fill(b, s, b.N, "sink")
	commits, cpu0 := s.commits.Load(), processCPU()
	pages0 := s.PagesWritten()
	b.ReportAllocs()
	b.ResetTimer()
	var outcomes sync.WaitGroup
	storetest.Drain(b, s, "sink", b.N, conc, func(d store.Delivery) {
		a := store.Attempt{N: 1, At: time.Now(), Duration: time.Millisecond, Status: 200}
		outcomes.Add(1)
		s.Settle(ctx, d, storetest.Delivered(a), func(err error) {
			if err != nil {
				b.Error(err)
			}
			outcomes.Done()
		})
	})
	outcomes.Wait()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/n, "cpu-µs/delivery")
	if c := s.commits.Load() - commits; c > 0 {
		b.ReportMetric(n/float64(c), "deliveries/commit")
		b.ReportMetric(float64(s.PagesWritten()-pages0)/float64(c), "pages/commit")
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSweepEvents measures the retention sweep: b.N events, each with
// one delivered delivery, are stored first (not timed); then one sweep,
// past their retention, deletes them all. Reported per event: wall time
// and this process's CPU time; and events per commit.
//
//	go test -run '^$' -bench SweepEvents -benchtime 100000x ./relay/store/bolt/
func BenchmarkSweepEvents(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	storetest.Fill(b, s, b.N, "sink")
	var outcomes sync.WaitGroup
	storetest.Drain(b, s, "sink", b.N, 8, func(d store.Delivery) {
		outcomes.Add(1)
		s.Settle(ctx, d, storetest.Delivered(store.Attempt{N: 1, At: time.Now(), Status: 200}), func(err error) {
			if err != nil {
				b.Error(err)
			}
			outcomes.Done()
		})
	})
	outcomes.Wait()
	commits, cpu0 := s.commits.Load(), processCPU()
	b.ResetTimer()
	n, err := s.sweepEvents(ctx, time.Now().Add(s.retention+time.Second))
	b.StopTimer()
	if err != nil || n != b.N {
		b.Fatalf("sweepEvents deleted %d of %d events: %v", n, b.N, err)
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
	if c := s.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "events/commit")
	}
}

// BenchmarkQueuedBytes fills a store with b.N callbacks (the seed body, two
// destinations, a dedupe claim each), all still queued, and reports the
// data file's size per callback, that of the same data compacted (Compact),
// and the Go heap in use once they are queued (the mapped file is not heap).
// Use a fixed count:
//
//	go test -run '^$' -bench QueuedBytes -benchtime 100000x ./relay/store/bolt/
func BenchmarkQueuedBytes(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	body := storetest.SeedBody(0)
	ctx := context.Background()
	var seq atomic.Int64
	b.SetParallelism(32) // concurrent accepts share commits, as under load
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: body}
			d := store.Dedupe{Key: fmt.Sprintf("1001:mid-%d", n), TTL: 24 * time.Hour}
			if _, err := s.Accept(ctx, ev, []string{"acme-crm", "acme-archive"}, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	res, err := Compact(dir, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(len(body)), "body-bytes")
	b.ReportMetric(float64(res.Before)/n, "file-bytes/callback")
	b.ReportMetric(float64(res.After)/n, "compacted-bytes/callback")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}
