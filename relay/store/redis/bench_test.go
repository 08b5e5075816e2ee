package redis

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
)

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
	srv := testredis.Start(b)
	s := openStore(b, srv.URL(), uniquePrefix(b))
	body := seedBody(b)
	dests := []string{"acme-crm", "acme-archive"}
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
	info, err := s.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
	}
	return 0
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
