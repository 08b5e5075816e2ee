package redis

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// benchLayouts are the key layouts the store benchmarks run on: one
// partition on one Redis (the default), 16 on one Redis, and 16 on a
// three-master cluster (the cluster default). Select one with -bench
// 'Name/single-1$'.
var benchLayouts = []struct {
	name string
	open func(b *testing.B) *Store
}{
	{"single-1", func(b *testing.B) *Store {
		return openStore(b, testredis.Start(b).URL(), uniquePrefix(b))
	}},
	{"single-16", func(b *testing.B) *Store {
		return openStore(b, testredis.Start(b).URL(), uniquePrefix(b), withPartitions(16))
	}},
	{"cluster-16", func(b *testing.B) *Store {
		return openStore(b, testredis.StartCluster(b, false).URL(), uniquePrefix(b), withCluster)
	}},
}

// infoEach is INFO section of every server of s: its masters on a cluster.
func infoEach(b *testing.B, s *Store, section string) []string {
	b.Helper()
	var mu sync.Mutex
	var out []string
	each := func(ctx context.Context, c *goredis.Client) error {
		info, err := c.Info(ctx, section).Result()
		mu.Lock()
		out = append(out, info)
		mu.Unlock()
		return err
	}
	var err error
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(context.Background(), each)
	} else {
		err = each(context.Background(), s.rdb.(*goredis.Client))
	}
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// infoAll is infoEach joined, for counters summed over the servers.
func infoAll(b *testing.B, s *Store, section string) string {
	return strings.Join(infoEach(b, s, section), "\r\n")
}

// resetStats resets the counters of every server of s.
func resetStats(b *testing.B, s *Store) {
	b.Helper()
	each := func(ctx context.Context, c *goredis.Client) error { return c.ConfigResetStat(ctx).Err() }
	var err error
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(context.Background(), each)
	} else {
		err = each(context.Background(), s.rdb.(*goredis.Client))
	}
	if err != nil {
		b.Fatal(err)
	}
}

// benchParallelism multiplies GOMAXPROCS into the number of goroutines, like
// concurrent ingest requests; both benchmarks use it so their numbers compare.
const benchParallelism = 8

func seedBody(b *testing.B) []byte {
	b.Helper()
	body, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkAcceptParallel measures the whole accept path: dedupe claim,
// event body, two deliveries, one script per event.
func BenchmarkAcceptParallel(b *testing.B) {
	for _, l := range benchLayouts {
		b.Run(l.name, func(b *testing.B) { benchAccept(b, l.open(b)) })
	}
}

func benchAccept(b *testing.B, s *Store) {
	body := seedBody(b)
	dests := []string{"acme-crm", "acme-archive"}
	var seq atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(benchParallelism)
	resetStats(b, s)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: body, ReceivedAt: time.Now()}
			key := "1001:" + strconv.FormatInt(seq.Add(1), 10)
			ev.DedupeKey = key
			if _, err := s.Accept(ctx, ev, dests, store.Dedupe{Key: key, TTL: 24 * time.Hour}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	b.ReportMetric(scriptMicros(b, s)/float64(b.N), "script-µs/accept")
}

// scriptMicros reads how long the server spent running EVALSHA calls, by its
// own count (INFO commandstats): the store's work in Redis without the
// network and reply handling, which are per call, not per event.
func scriptMicros(b *testing.B, s *Store) float64 {
	b.Helper()
	info := infoAll(b, s, "commandstats")
	var total float64
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}

// ceilingScript is the least a durable, deduplicated accept can do in one
// script: the claim and one append of the body.
const ceilingScript = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', 86400) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'id', ARGV[1], 'body', ARGV[2])
return 1`

// BenchmarkCeilingScript runs ceilingScript over the same client options and
// parallelism as BenchmarkAcceptParallel, to show what the full accept costs
// over the bare minimum.
func BenchmarkCeilingScript(b *testing.B) {
	srv := testredis.Start(b)
	s := openStore(b, srv.URL(), uniquePrefix(b))
	sc := goredis.NewScript(ceilingScript)
	if err := sc.Load(context.Background(), s.rdb).Err(); err != nil {
		b.Fatal(err)
	}
	body := seedBody(b)
	stream := s.prefix + "ceiling"
	var seq atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(benchParallelism)
	if err := s.rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := store.NewID("evt_")
			key := s.prefix + "dd:1001:" + strconv.FormatInt(seq.Add(1), 10)
			if err := sc.Run(ctx, s.rdb, []string{key, stream}, id, body).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	b.ReportMetric(scriptMicros(b, s)/float64(b.N), "script-µs/accept")
}

// BenchmarkLeaseComplete measures the outcome path as a destination's
// workers drive it: one leaser takes batches of 16 (twice the concurrency,
// as the dispatcher leases ahead) and 8 workers Complete them. Reported per
// delivery: redis-server CPU (INFO cpu), the commands Redis ran (scripts'
// redis.call included, from INFO commandstats) and the script calls.
func BenchmarkLeaseComplete(b *testing.B) {
	for _, l := range benchLayouts {
		b.Run(l.name, func(b *testing.B) { benchLeaseComplete(b, l.open(b)) })
	}
}

func benchLeaseComplete(b *testing.B, s *Store) {
	const conc = 8
	ctx := context.Background()
	storetest.Fill(b, s, b.N, "sink")
	resetStats(b, s)
	cpu0 := serverCPU(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	storetest.Drain(b, s, "sink", b.N, conc, func(d store.Delivery) {
		a := store.Attempt{At: time.Now(), Duration: time.Millisecond, Status: 200}
		if err := storetest.Complete(ctx, s, d, a); err != nil {
			b.Error(err)
		}
	})
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64((serverCPU(b, s)-cpu0).Microseconds())/n, "redis-cpu-µs/delivery")
	calls, scripts := commandCalls(b, s)
	b.ReportMetric(float64(calls)/n, "redis-cmds/delivery")
	b.ReportMetric(float64(scripts)/n, "scripts/delivery")
}

// BenchmarkLease measures the lease alone on a busy queue: batches of 16
// due deliveries, as the dispatcher of a destination of concurrency 8
// leases, none finished. Reported per delivery: redis-server CPU and
// EVALSHA time (the scripts' own count, INFO commandstats).
func BenchmarkLease(b *testing.B) {
	for _, l := range benchLayouts {
		b.Run(l.name, func(b *testing.B) {
			s := l.open(b)
			ctx := context.Background()
			storetest.Fill(b, s, b.N, "sink")
			resetStats(b, s)
			cpu0 := serverCPU(b, s)
			b.ResetTimer()
			for left := b.N; left > 0; {
				ds, err := s.Lease(ctx, "sink", min(left, 16), time.Minute)
				if err != nil || len(ds) == 0 {
					b.Fatalf("Lease: %d, %v with %d left", len(ds), err, left)
				}
				left -= len(ds)
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64((serverCPU(b, s)-cpu0).Microseconds())/n, "redis-cpu-µs/delivery")
			b.ReportMetric(scriptMicros(b, s)/n, "script-µs/delivery")
		})
	}
}

// serverCPU is redis-server's own CPU time so far (testredis.InfoCPU).
func serverCPU(b *testing.B, s *Store) time.Duration {
	b.Helper()
	var total time.Duration
	for _, info := range infoEach(b, s, "cpu") {
		cpu, err := testredis.InfoCPU(testredis.InfoFields(info))
		if err != nil {
			b.Fatal(err)
		}
		total += cpu
	}
	return total
}

// commandCalls sums the calls of INFO commandstats: every command, those
// scripts ran included, and apart the script calls themselves.
func commandCalls(b *testing.B, s *Store) (calls, scripts int64) {
	b.Helper()
	info := infoAll(b, s, "commandstats")
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" || name == "cmdstat_config|resetstat" ||
			strings.HasPrefix(name, "cmdstat_cluster") { // the cluster client reading the slot map
			continue
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		c, _ := strconv.ParseInt(v, 10, 64)
		if name == "cmdstat_evalsha" || name == "cmdstat_eval" {
			scripts += c
			continue
		}
		calls += c
	}
	return calls, scripts
}

// BenchmarkQueuedBytes accepts b.N callbacks (the seed body, two
// destinations, a dedupe claim each), all still queued, and reports Redis's
// used_memory per callback and this process's Go heap in use once they are
// queued. Use a fixed count:
//
//	go test -run '^$' -bench QueuedBytes -benchtime 100000x ./relay/store/redis/
func BenchmarkQueuedBytes(b *testing.B) {
	srv := testredis.Start(b)
	s := openStore(b, srv.URL(), uniquePrefix(b))
	body := seedBody(b)
	ctx := context.Background()
	before := usedMemory(b, s)
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: body, ReceivedAt: time.Now()}
			key := "1001:" + strconv.FormatInt(seq.Add(1), 10)
			if _, err := s.Accept(ctx, ev, []string{"acme-crm", "acme-archive"}, store.Dedupe{Key: key, TTL: 24 * time.Hour}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(len(body)), "body-bytes")
	b.ReportMetric(float64(usedMemory(b, s)-before)/float64(b.N), "redis-bytes/callback")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// usedMemory is INFO memory's used_memory.
func usedMemory(b *testing.B, s *Store) int64 {
	b.Helper()
	info, err := s.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}
