package deliver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/gctune"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	redisstore "github.com/relaygw/relay/relay/store/redis"
	"github.com/relaygw/relay/relay/store/storetest"
)

// Run the delivery benchmarks with:
//
//	go test -run '^$' -bench 'DeliverBacklog|DeliverLatency' -benchtime 1x ./relay/deliver/
//
// RELAY_BENCH_EVENTS sets the backlog (default 100000) and
// RELAY_BENCH_CONCURRENCY the destination's concurrency and the ceiling's
// goroutines (default 8).

// benchBody is the size and shape of the provider's seed callback.
var benchBody = storetest.SeedBody(0)

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func newBenchSink(tb testing.TB) *httptest.Server {
	tb.Helper()
	sk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	tb.Cleanup(sk.Close)
	return sk
}

// BenchmarkDeliverBacklog measures deliveries per second from a queued
// backlog to a local sink answering 200, beside the ceiling: the same number
// of POSTs of the same body from as many goroutines as the destination's
// concurrency, with a plain net/http client and nothing else. Relay leases,
// signs, attempts and durably records every delivery. Both run with the
// garbage collector set as relay serve sets it (gctune). The benchmark
// runs once with the embedded store, once with a Redis store on its own
// redis-server (appendfsync everysec, as testredis starts it), and once with
// no store at all (nullStore), which measures delivery's own cost apart from
// a store's. The CPU columns are this process's CPU time per delivery or
// POST (sink included, so both sides pay for it); for Redis, redis-server's
// own CPU per delivery is reported apart. The machine-cpu columns are the
// busy time of every CPU of the machine per delivery or POST, which also
// holds what the kernel does for the store in threads of its own; for the
// embedded store, pages/delivery is what its commits wrote. The cpus-busy
// columns are machine CPU per delivery or POST times the rate: how many of
// the machine's CPUs the phase kept busy.
// RELAY_BENCH_CPUPROFILE names a file for a CPU profile of the relay phase
// alone, RELAY_BENCH_CEILING_CPUPROFILE one for the ceiling's (the second
// run of it overwrites the first).
func BenchmarkDeliverBacklog(b *testing.B) {
	b.Cleanup(gctune.Apply(os.Getenv))
	n := envInt(b, "RELAY_BENCH_EVENTS", 100000)
	conc := envInt(b, "RELAY_BENCH_CONCURRENCY", 8)
	for _, backend := range []string{"bolt", "redis", "none"} {
		b.Run("store="+backend, func(b *testing.B) {
			sk := newBenchSink(b)
			for range b.N {
				b.StopTimer()
				st, rdb := newBenchStore(b, backend)
				serverCPU := func() time.Duration { return redisCPU(b, rdb) }
				t0 := time.Now()
				storetest.Fill(b, st, n, "sink")
				b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "queued/s")
				settleAOF(b, rdb)
				b.StartTimer()

				// The ceiling runs before and after the relay and their mean is
				// reported, so that a machine busy with other work in one phase
				// skews the ratio less.
				before := runCeiling(b, sk.URL, n, conc)
				srv0, commits0, pages0, forks0 := serverCPU(), commits(st), pagesWritten(st), redisForks(b, rdb)
				relay := runBacklog(b, st, sk.URL, n, conc)
				srv, commits, pages := serverCPU()-srv0, commits(st)-commits0, pagesWritten(st)-pages0
				forks := redisForks(b, rdb) - forks0
				after := runCeiling(b, sk.URL, n, conc)
				ceiling := (before.rate + after.rate) / 2
				b.ReportMetric(relay.rate, "relay-deliveries/s")
				b.ReportMetric(ceiling, "ceiling-posts/s")
				b.ReportMetric(100*relay.rate/ceiling, "%-of-ceiling")
				b.ReportMetric(relay.cpu, "relay-cpu-us/delivery")
				b.ReportMetric((before.cpu+after.cpu)/2, "ceiling-cpu-us/post")
				b.ReportMetric(relay.machineCPU, "relay-machine-cpu-us/delivery")
				b.ReportMetric((before.machineCPU+after.machineCPU)/2, "ceiling-machine-cpu-us/post")
				// How many of the machine's CPUs a phase kept busy: the
				// ratio depends on how much the ceiling leaves idle.
				b.ReportMetric(relay.rate*relay.machineCPU/1e6, "relay-cpus-busy")
				b.ReportMetric((before.rate*before.machineCPU+after.rate*after.machineCPU)/2/1e6, "ceiling-cpus-busy")
				b.ReportMetric(relay.allocs, "relay-allocs/delivery")
				b.ReportMetric((before.allocs+after.allocs)/2, "ceiling-allocs/post")
				b.ReportMetric(relay.switches, "relay-switches/delivery")
				b.ReportMetric((before.switches+after.switches)/2, "ceiling-switches/post")
				if commits > 0 {
					b.ReportMetric(float64(n)/float64(commits), "deliveries/commit")
					b.ReportMetric(float64(pages)/float64(n), "pages/delivery")
				}
				if rdb != nil {
					b.ReportMetric(float64(srv.Microseconds())/float64(n), "redis-cpu-us/delivery")
					// A fork is an AOF rewrite that ran beside the relay: its
					// child's CPU is not in redis-cpu-us but took the machine's.
					b.ReportMetric(float64(forks), "redis-forks")
					fwd, fwdSrv := runStreamForwarder(b, rdb, sk.URL, n, conc)
					b.ReportMetric(fwd.rate, "forwarder-deliveries/s")
					b.ReportMetric(100*relay.rate/fwd.rate, "%-of-forwarder")
					b.ReportMetric(float64(fwdSrv.Microseconds())/float64(n), "forwarder-redis-cpu-us/delivery")
				}
			}
		})
	}
}

// newBenchStore opens an embedded store, or a Redis store on a redis-server
// of its own and a client of that server (nil for the other stores).
func newBenchStore(tb testing.TB, backend string) (testStore, *goredis.Client) {
	tb.Helper()
	switch backend {
	case "bolt":
		return newTestStore(tb), nil
	case "none":
		return &nullStore{}, nil
	}
	srv := testredis.Start(tb)
	// A prefix of its own, in case RELAY_TEST_REDIS_URL points at a shared
	// server.
	rs, err := redisstore.Open(context.Background(), redisstore.Options{URL: srv.URL(), Prefix: store.NewID("bench") + ":"})
	if err != nil {
		tb.Fatalf("redis.Open: %v", err)
	}
	tb.Cleanup(func() { rs.Close() })
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	tb.Cleanup(func() { rdb.Close() })
	return rs, rdb
}

// commits is how many transactions an embedded store has committed, or 0.
func commits(st testStore) int64 {
	if c, ok := st.(interface{ Commits() int64 }); ok {
		return c.Commits()
	}
	return 0
}

// pagesWritten is how many pages an embedded store has written, or 0.
func pagesWritten(st testStore) int64 {
	if c, ok := st.(interface{ PagesWritten() int64 }); ok {
		return c.PagesWritten()
	}
	return 0
}

// nullStore keeps nothing: Accept counts events, Lease hands out that many
// deliveries of the last event accepted (due at once, in order), and every
// outcome is dropped. Only the backlog benchmark uses it.
type nullStore struct {
	mu             sync.Mutex
	queued, leased int
	ev             store.Event
}

func (s *nullStore) Accept(_ context.Context, ev store.Event, _ []string, _ store.Dedupe) (store.AcceptResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued++
	ev.ID = "evt_null"
	s.ev = ev
	return store.AcceptResult{EventID: ev.ID, Deliveries: 1}, nil
}

func (s *nullStore) Lease(_ context.Context, dest string, n int, _ time.Duration) ([]store.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Delivery
	now := time.Now()
	for ; n > 0 && s.leased < s.queued; n-- {
		s.leased++
		out = append(out, store.Delivery{
			ID: "dlv_null_" + strconv.Itoa(s.leased), EventID: s.ev.ID, Destination: dest,
			State: store.StatePending, CreatedAt: now, DueAt: now, Lease: "null", Event: &s.ev,
		})
	}
	return out, nil
}

func (s *nullStore) Event(context.Context, string) (store.EventRecord, error) {
	return store.EventRecord{}, store.ErrNotFound
}
func (s *nullStore) ExtendLease(context.Context, store.Delivery, time.Duration) error { return nil }
func (s *nullStore) Release(context.Context, store.Delivery, time.Time) error         { return nil }
func (s *nullStore) Settle(_ context.Context, _ store.Delivery, _ store.Settlement, done func(error)) {
	done(nil)
}

// redisCPU is redis-server's own CPU time so far (testredis.InfoCPU); 0
// when c is nil.
func redisCPU(tb testing.TB, c *goredis.Client) time.Duration {
	tb.Helper()
	if c == nil {
		return 0
	}
	cpu, err := testredis.InfoCPU(redisInfo(tb, c, "cpu"))
	if err != nil {
		tb.Fatal(err)
	}
	return cpu
}

// redisForks is INFO stats' total_forks; 0 when c is nil.
func redisForks(tb testing.TB, c *goredis.Client) int {
	tb.Helper()
	if c == nil {
		return 0
	}
	n, err := strconv.Atoi(redisInfo(tb, c, "stats")["total_forks"])
	if err != nil {
		tb.Fatalf("INFO stats: total_forks: %v", err)
	}
	return n
}

// redisInfo returns the fields of one section of c's INFO.
func redisInfo(tb testing.TB, c *goredis.Client, section string) map[string]string {
	tb.Helper()
	txt, err := c.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatalf("INFO %s: %v", section, err)
	}
	return testredis.InfoFields(txt)
}

// settleAOF rewrites the AOF of c's server (nothing when c is nil) and
// waits until that is done. Filling the backlog writes past Redis's
// auto-aof-rewrite threshold, and a rewrite it set off would run in a forked
// child beside the timed phase that follows, taking CPU from whichever of
// the relay or the forwarder came next: a cost of the setup, not of
// delivering. The timed phases' own writes may still set one off;
// redis-forks counts those of the relay's phase.
func settleAOF(tb testing.TB, c *goredis.Client) {
	tb.Helper()
	if c == nil {
		return
	}
	wait := func() {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			info := redisInfo(tb, c, "persistence")
			if info["aof_rewrite_in_progress"] == "0" && info["aof_rewrite_scheduled"] == "0" {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("an AOF rewrite still runs after 5 minutes")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait()
	if err := c.BgRewriteAOF(context.Background()).Err(); err != nil {
		tb.Fatalf("BGREWRITEAOF: %v", err)
	}
	wait()
}

// phase is one timed phase: its rate per second, and this process's CPU
// microseconds, heap allocations and goroutine switches per item.
// Allocations and switches do not depend on how busy the machine is, so
// they compare builds where CPU time is noisy. Switches are goroutines
// made to run by the scheduler, a wake-up whatever woke them, as the count
// of runtime/metrics' /sched/latencies:seconds: the runtime samples one
// scheduling in eight of each goroutine, so the figure is about an eighth
// of the real number; it compares builds and phases, not absolute costs.
// The machine's CPU is the busy time of all its CPUs, this process's and
// everyone else's: the kernel writes back what a commit wrote and runs the
// file system's journal in threads of its own, on the same cores.
type phase struct{ rate, cpu, machineCPU, allocs, switches float64 }

// phaseStart is what a phase is measured from.
type phaseStart struct {
	at                time.Time
	cpu, machineCPU   time.Duration
	mallocs, switches uint64
}

func startPhase() phaseStart {
	return phaseStart{at: time.Now(), cpu: cpuTime(), machineCPU: machineCPU(), mallocs: mallocs(), switches: switches()}
}

func (p0 phaseStart) measure(n int) phase {
	cpu, machine := cpuTime()-p0.cpu, machineCPU()-p0.machineCPU
	return phase{
		rate:       float64(n) / time.Since(p0.at).Seconds(),
		cpu:        float64(cpu.Microseconds()) / float64(n),
		machineCPU: float64(machine.Microseconds()) / float64(n),
		allocs:     float64(mallocs()-p0.mallocs) / float64(n),
		switches:   float64(switches()-p0.switches) / float64(n),
	}
}

// machineCPU is the busy time of every CPU of the machine so far, from
// /proc/stat (0 where there is none): all but idle and iowait.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// switches is the sampled count of goroutines scheduled to run (see phase).
func switches() uint64 {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return n
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileCPU starts a CPU profile into the file that the environment
// variable env names, if it names one, and returns what stops it.
func profileCPU(tb testing.TB, env string) (stop func()) {
	tb.Helper()
	path := os.Getenv(env)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// runBacklog delivers n queued deliveries.
func runBacklog(tb testing.TB, st Queue, url string, n, conc int) phase {
	tb.Helper()
	d := dest("sink", url)
	d.Concurrency = conc
	d.SigningSecret = vectorSecret
	var delivered atomic.Int64
	all := make(chan struct{})
	opts := testOptions()
	opts.OnAttempt = func(_ string, o Outcome, _ int, _ time.Duration) {
		if o == OutcomeSuccess && delivered.Add(1) == int64(n) {
			close(all)
		}
	}
	m, err := NewManager(st, []config.Destination{d}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer profileCPU(tb, "RELAY_BENCH_CPUPROFILE")()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p0 := startPhase()
	go func() { done <- m.Run(ctx) }()
	<-all
	cancel()
	<-done // the last outcomes are durable before Run returns
	return p0.measure(n)
}

// runCeiling POSTs the body n times from conc goroutines.
func runCeiling(tb testing.TB, url string, n, conc int) phase {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	defer profileCPU(tb, "RELAY_BENCH_CEILING_CPUPROFILE")()
	p0 := startPhase()
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(benchBody))
				if err != nil {
					tb.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return p0.measure(n)
}

// forwardBatch is how many entries the stream forwarder reads at a time.
const forwardBatch = 16

// runStreamForwarder is a second ceiling for the Redis store, the one the
// developers' guide names ("a minimal stream->HTTP forwarder"): n bodies
// are added to a Redis stream first (not timed), then conc goroutines each
// read up to forwardBatch entries with XREADGROUP, POST each body with a
// plain net/http client, and acknowledge the batch with one XACK, until
// the stream is drained. It signs nothing, keeps no attempt log and never
// retries. It returns its phase and redis-server's CPU time during it.
func runStreamForwarder(tb testing.TB, rdb *goredis.Client, url string, n, conc int) (phase, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	key := store.NewID("fwd")
	for i := 0; i < n; i += 1000 {
		pipe := rdb.Pipeline()
		for range min(1000, n-i) {
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []any{"body", benchBody}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatalf("XADD: %v", err)
		}
	}
	if err := rdb.XGroupCreate(ctx, key, "g", "0").Err(); err != nil {
		tb.Fatalf("XGROUP CREATE: %v", err)
	}
	settleAOF(tb, rdb)
	defer rdb.Del(ctx, key)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	var acked atomic.Int64
	var wg sync.WaitGroup
	srv0 := redisCPU(tb, rdb)
	p0 := startPhase()
	for c := range conc {
		wg.Go(func() {
			args := &goredis.XReadGroupArgs{Group: "g", Consumer: strconv.Itoa(c), Streams: []string{key, ">"}, Count: forwardBatch, Block: -1}
			for {
				res, err := rdb.XReadGroup(ctx, args).Result()
				if err == goredis.Nil {
					return // drained
				}
				if err != nil {
					tb.Errorf("XREADGROUP: %v", err)
					return
				}
				ids := make([]string, 0, forwardBatch)
				for _, m := range res[0].Messages {
					body, _ := m.Values["body"].(string)
					resp, err := client.Post(url, "application/json", strings.NewReader(body))
					if err != nil {
						tb.Errorf("POST: %v", err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ids = append(ids, m.ID)
				}
				if err := rdb.XAck(ctx, key, "g", ids...).Err(); err != nil {
					tb.Errorf("XACK: %v", err)
					return
				}
				acked.Add(int64(len(ids)))
			}
		})
	}
	wg.Wait()
	p := p0.measure(n)
	if got := acked.Load(); got != int64(n) {
		tb.Fatalf("stream forwarder acknowledged %d of %d entries", got, n)
	}
	return p, redisCPU(tb, rdb) - srv0
}

// BenchmarkDeliverLatency measures a healthy destination's queue-to-delivered
// latency (from Accept returning to the receiver getting the request) for a
// steady stream of events: alone; while a second destination gets every
// tenth event and answers at once; and while it gets them and hangs every
// request, holding its whole worker pool, with deliveries queued for it too.
// The middle case is the control: it carries the same extra load as the
// last, so what the last adds beyond it is the hanging alone.
func BenchmarkDeliverLatency(b *testing.B) {
	const (
		events = 3000
		every  = 2 * time.Millisecond // 500 events/s
	)
	for _, second := range []string{"none", "healthy", "hanging"} {
		b.Run("second="+second, func(b *testing.B) {
			for range b.N {
				lat := latencyRun(b, events, every, second)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				all := sorted(lat)
				b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
				b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
				b.ReportMetric(ms(all[len(all)-1]), "max-ms")
				// The second destination gets its eighth event at
				// number 70; a hanging one dials a connection for each of
				// its first eight, on the same two cores. From then on it
				// holds its whole pool, the state the goal is about.
				steady := sorted(lat[warmUp:])
				b.ReportMetric(ms(steady[len(steady)*99/100]), "steady-p99-ms")
			}
		})
	}
}

// warmUp is how many of BenchmarkDeliverLatency's events its steady p99
// leaves out: the second destination's pool is full by then.
const warmUp = 100

// sorted returns a sorted copy of d.
func sorted(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// latencyRun accepts events one every interval for a healthy destination,
// and every tenth for a second one too unless second is "none", waking the
// dispatchers as ingest does, and returns the healthy latencies in the
// order the events were accepted. The second destination hangs every
// request when second is "hanging" and answers at once otherwise.
func latencyRun(b *testing.B, events int, every time.Duration, second string) []time.Duration {
	hanging := second == "hanging"
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	all := make(chan struct{})
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(HeaderEventID)
		if _, dup := arrived[id]; !dup {
			arrived[id] = at
			if len(arrived) == events {
				close(all)
			}
		}
	}))
	defer healthy.Close()
	release := make(chan struct{})
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hanging {
			io.Copy(io.Discard, r.Body)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer other.Close()
	defer close(release)

	st := newTestStore(b)
	h, x := dest("healthy", healthy.URL), dest("second", other.URL)
	h.Concurrency, x.Concurrency = 8, 8
	x.Timeout = config.Duration(time.Hour)
	opts := testOptions()
	opts.PollInterval = config.DefaultPollInterval
	opts.DrainTimeout = 10 * time.Millisecond
	m, err := NewManager(st, []config.Destination{h, x}, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Events are accepted as ingest does, each by its own goroutine, so a
	// slow fsync does not slow the stream down.
	type accepted struct {
		at time.Time // when Accept returned
		n  int       // the event's number in the stream
	}
	var qmu sync.Mutex
	queued := make(map[string]accepted, events)
	var producers sync.WaitGroup
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range events {
		<-tick.C
		dests := []string{"healthy"}
		if second != "none" && i%10 == 0 {
			dests = append(dests, "second")
		}
		producers.Go(func() {
			res, err := st.Accept(context.Background(), store.Event{WebhookID: "1001", Body: benchBody, ReceivedAt: time.Now()}, dests, store.Dedupe{})
			if err != nil {
				b.Error(err)
				return
			}
			at := time.Now()
			qmu.Lock()
			queued[res.EventID] = accepted{at, i}
			qmu.Unlock()
			for _, d := range dests {
				m.Wake(d)
			}
		})
	}
	producers.Wait()
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("not every event was delivered to the healthy destination within a minute")
	}
	if hanging {
		for _, s := range m.States() {
			if s.Name == "second" && s.InFlight != x.Concurrency {
				b.Fatalf("hanging destination has %d attempts in flight, want its whole pool (%d)", s.InFlight, x.Concurrency)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, events)
	for id, q := range queued {
		// An arrival a hair before Accept returned (the receiver can be
		// quicker than the caller's wake-up) counts as zero.
		lat[q.n] = max(arrived[id].Sub(q.at), 0)
	}
	return lat
}
