package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// sizes is what the full and the quick run differ in.
type sizes struct {
	ingest  time.Duration // each closed-loop maximum
	latency time.Duration // each open-loop run
	drain   int           // events in the backlog drained by each store
	queue   int           // deliveries left queued for the RSS row
	agent   int           // events through the agent, and directly
}

var (
	full  = sizes{ingest: 10 * time.Second, latency: 10 * time.Second, drain: 100_000, queue: 1_000_000, agent: 20_000}
	quick = sizes{ingest: 3 * time.Second, latency: 3 * time.Second, drain: 10_000, queue: 40_000, agent: 5_000}
)

const (
	conns     = 64   // closed-loop connections, as the wrk runs used
	openConns = 512  // most requests in flight in the open loop
	fixedRate = 2000 // req/s of the first latency row
	// queueFanout is how many destinations each event of the RSS row's
	// queue goes to: a million deliveries from a quarter million callbacks.
	queueFanout = 4
	drainLimit  = 5 * time.Minute
	// forwardWorkers is the end-to-end ceiling's forwarder goroutines
	// (bench/ceiling's default) and the concurrency of Relay's sink
	// destination, so both deliver as many callbacks at a time.
	forwardWorkers = 8
)

func main() {
	sz, label := full, "full"
	if os.Getenv("BENCH_QUICK") == "1" {
		sz, label = quick, "quick (BENCH_QUICK=1)"
	}
	b, err := newBench(sz)
	if err != nil {
		fatal(err)
	}
	defer b.close()
	// An interrupted run still stops every server it started.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		b.close()
		os.Exit(130)
	}()
	start := time.Now()
	if os.Getenv("BENCH_SCALE") == "1" {
		load0 := loadAverage()
		runs, err := b.scale(context.Background())
		if err != nil {
			b.close()
			fatal(err)
		}
		printScale(os.Stdout, label, sz, runs, load0, time.Since(start))
		return
	}
	rep, err := b.run(context.Background())
	if err != nil {
		b.close()
		fatal(err)
	}
	printReport(os.Stdout, label, sz, rep, time.Since(start))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

type bench struct {
	sz    sizes
	work  string
	root  string
	sink  *proc // the delivery sink every destination and forwarder POSTs to
	mu    sync.Mutex
	procs []*exec.Cmd
}

func newBench(sz sizes) (*bench, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, errors.New("run me from the repository's root (make bench does)")
	}
	for _, tool := range []string{"go", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is missing (make deps installs redis-server)", tool)
		}
	}
	work, err := os.MkdirTemp("", "relay-bench-")
	if err != nil {
		return nil, err
	}
	return &bench{sz: sz, work: work, root: root}, nil
}

func (b *bench) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.procs {
		c.Process.Kill()
		c.Wait()
	}
	b.procs = nil
	os.RemoveAll(b.work)
}

func (b *bench) path(name string) string { return filepath.Join(b.work, name) }

// build compiles every program the run uses, and the test binaries with
// tests (the scale run needs none).
func (b *bench) build(ctx context.Context, tests bool) error {
	steps := [][]string{
		{"build", "-o", b.path("relay"), "./cmd/relay"},
		{"build", "-o", b.path("ceiling"), "./bench/ceiling"},
		{"build", "-o", b.path("load"), "./bench/load"},
	}
	if tests {
		steps = append(steps,
			[]string{"test", "-c", "-o", b.path("deliver.test"), "./relay/deliver/"},
			[]string{"test", "-c", "-o", b.path("agent.test"), "./relay/agent/"})
	}
	for _, s := range steps {
		logf("go %s", strings.Join(s, " "))
		cmd := exec.CommandContext(ctx, "go", s...)
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// proc is a server the run started.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// start runs a server and waits until addr accepts connections.
func (b *bench) start(name, addr string, args ...string) (*proc, error) {
	logf("start %s: %s", name, strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	lf, err := os.Create(b.path(name + ".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	// relay serve sets GOGC=800 unless GOGC is set; the ceilings get the
	// same, so both sides run with the same garbage collector.
	cmd.Env = append(os.Environ(), "GOGC="+envOr("GOGC", "800"))
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	lf.Close()
	b.mu.Lock()
	b.procs = append(b.procs, cmd)
	b.mu.Unlock()
	p := &proc{cmd: cmd, addr: addr}
	for range 300 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.stop(p)
	log, _ := os.ReadFile(b.path(name + ".log"))
	return nil, fmt.Errorf("%s never listened on %s:\n%s", name, addr, log)
}

func (b *bench) stop(p *proc) {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	b.mu.Lock()
	for i, c := range b.procs {
		if c == p.cmd {
			b.procs = append(b.procs[:i], b.procs[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startRedis starts an empty redis-server, appendonly with everysec, as
// production would run it; every Redis-backed server gets a fresh one so no
// run pays for another's AOF rewrites.
func (b *bench) startRedis(name string, extra ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir := b.path("redis-" + name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return b.start("redis-"+name, addr, append([]string{"redis-server", "--port", port, "--bind", "127.0.0.1",
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"}, extra...)...)
}

// loadResult is bench/load's output.
type loadResult struct {
	Sent   int     `json:"sent"`
	OK     int     `json:"ok"`
	Failed int     `json:"failed"`
	Rate   float64 `json:"rate"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Late   int     `json:"late"`

	// Measured around the run by bench/run, not by bench/load.
	cpu     []time.Duration // CPU of each watched process (children reaped included)
	loadCPU time.Duration   // bench/load's own CPU
	machine time.Duration   // busy time of every CPU of the machine
	elapsed time.Duration
	target  float64 // open loop: the scheduled rate
	// forks is how many times redis-server forked during an open loop
	// (for an AOF rewrite: the fork stalls it, and the child takes a core
	// while it writes the data set out); -1 without a redis-server.
	forks int64
}

// load runs bench/load against url while sampling the memory of watch (the
// highest sample of each part is returned) and measuring the CPU each
// process used.
func (b *bench) load(url string, watch []int, args ...string) (loadResult, []mem, error) {
	var res loadResult
	cpu0 := make([]time.Duration, len(watch))
	for i, pid := range watch {
		cpu0[i] = procCPU(pid)
	}
	busy0, t0 := machineBusy(), time.Now()
	cmd := exec.Command(b.path("load"), append([]string{"-url", url}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	peak := make([]mem, len(watch))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for i, pid := range watch {
				peak[i] = peakOf(peak[i], memOf(pid))
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Run()
	close(stop)
	wg.Wait()
	res.elapsed, res.machine = time.Since(t0), machineBusy()-busy0
	for i, pid := range watch {
		res.cpu = append(res.cpu, procCPU(pid)-cpu0[i])
	}
	if err != nil {
		return res, nil, fmt.Errorf("load %s: %w", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		return res, nil, fmt.Errorf("load output %q: %w", out.String(), err)
	}
	res.loadCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if res.Failed > 0 {
		logf("  %d of %d requests failed", res.Failed, res.Sent)
	}
	return res, peak, nil
}

func (b *bench) closedLoop(url string, watch ...int) (loadResult, []mem, error) {
	r, peak, err := b.load(url, watch, "-conns", strconv.Itoa(conns), "-duration", b.sz.ingest.String())
	if err == nil {
		logf("  closed loop: %.0f req/s", r.Rate)
	}
	return r, peak, err
}

func (b *bench) openLoop(url string, rate float64, redis string) (loadResult, error) {
	resume, err := rewriteAOF(redis)
	if err != nil {
		return loadResult{}, err
	}
	f0 := forks(redis)
	r, _, err := b.load(url, nil, "-rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"-conns", strconv.Itoa(openConns), "-duration", b.sz.latency.String())
	if rerr := resume(); err == nil {
		err = rerr
	}
	r.target, r.forks = rate, -1
	if f1 := forks(redis); f0 >= 0 && f1 >= 0 {
		r.forks = f1 - f0
	}
	if err == nil {
		logf("  open loop at %.0f/s: p50 %.2f p99 %.2f p99.9 %.2f ms, %d late", rate, r.P50, r.P99, r.P999, r.Late)
	}
	return r, err
}

// rewriteAOF has redis-server at addr (if any) rewrite its AOF, waits
// until it has, and turns its automatic rewrites off until resume is
// called. An open loop that runs between the two measures the server, not
// whether an automatic rewrite (a fork that stalls Redis, and a child that
// takes a core while it writes the data set out) falls in its seconds: one
// that did gave whichever side of the comparison it hit several times its
// p99. The forks column says whether one happened anyway.
func rewriteAOF(addr string) (resume func() error, err error) {
	if addr == "" {
		return func() error { return nil }, nil
	}
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	// An error says one is already running, which the wait below covers.
	_ = rdb.BgRewriteAOF(ctx).Err()
	deadline := time.Now().Add(drainLimit)
	for {
		info, err := rdb.Info(ctx, "persistence").Result()
		if err != nil {
			return nil, fmt.Errorf("INFO persistence: %w", err)
		}
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server did not rewrite its AOF within %s", drainLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	set := func(pct string) error {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		if err := c.ConfigSet(ctx, "auto-aof-rewrite-percentage", pct).Err(); err != nil {
			return fmt.Errorf("CONFIG SET auto-aof-rewrite-percentage %s: %w", pct, err)
		}
		return nil
	}
	// Redis's default is 100: a rewrite once the AOF doubles.
	return func() error { return set("100") }, set("0")
}

// forks is redis-server's total_forks (INFO stats) at addr; -1 for none or
// when it cannot be read.
func forks(addr string) int64 {
	if addr == "" {
		return -1
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_forks:"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is a process's user and system CPU, with that of its reaped
// children (redis-server's AOF rewrites), from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: utime, stime, cutime, cstime are the 14th to 17th fields.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		if k < len(f) {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * clockTick
}

// machineBusy is the busy time of every CPU of the machine (user, nice,
// system, irq, softirq) from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for _, k := range []int{1, 2, 3, 6, 7} {
		if k < len(f) {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * clockTick
}

// mem is a process's resident set and the anonymous part of it. The rest
// is file-backed: for the embedded store and the bbolt ceiling mostly the
// mapped database file, which the kernel can drop and read again, so the
// anonymous part is what the process itself holds.
type mem struct{ rss, anon int64 }

// memOf reads pid's mem from /proc (zero once it is gone).
func memOf(pid int) mem {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads VmRSS and RssAnon from a /proc/PID/status.
func parseStatus(r io.Reader) mem {
	var m mem
	kib := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n * 1024
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			m.rss = kib(v)
		} else if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			m.anon = kib(v)
		}
	}
	return m
}

// peakOf is the larger of each part of a and b.
func peakOf(a, b mem) mem { return mem{max(a.rss, b.rss), max(a.anon, b.anon)} }

// measured is everything one server gave.
type measured struct {
	max    float64
	maxRun loadResult // the closed loop that measured max
	// drainAfter is how long the queue (Relay) or the stream (the
	// forwarder) took to empty after that closed loop: delivery that
	// yielded to ingest catches up then.
	drainAfter       time.Duration
	at2000, atHalf   loadResult
	rssIdle, rssLoad mem
	rssQueue         mem   // relay only: right after queueing
	rssRestarted     mem   // relay only: restarted with the queue
	queued           int   // deliveries queued when rssQueue was read
	redisQueue       int64 // redis-server's RSS with the queue, redis store only
}

// report is the main table and the details behind it.
type report struct {
	rows    []row
	details []table
}

// table is a Markdown table: a header and rows of cells.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (b *bench) run(ctx context.Context) (report, error) {
	if err := b.build(ctx, true); err != nil {
		return report{}, err
	}
	sinkAddr, err := freeAddr()
	if err != nil {
		return report{}, err
	}
	sink, err := b.start("sink", sinkAddr, b.path("ceiling"), "-mode", "bare", "-listen", sinkAddr)
	if err != nil {
		return report{}, err
	}
	b.sink = sink
	defer b.stop(sink)

	emb, err := b.relay(ctx, "embedded", sinkAddr)
	if err != nil {
		return report{}, err
	}
	rds, err := b.relay(ctx, "redis", sinkAddr)
	if err != nil {
		return report{}, err
	}
	bolt, err := b.ceiling(ctx, "bolt", emb.max/2, "-mode", "bolt", "-path", b.path("ceiling-bolt"))
	if err != nil {
		return report{}, err
	}
	lua, err := b.ceiling(ctx, "redis", rds.max/2, "-mode", "redis")
	if err != nil {
		return report{}, err
	}
	fwd, err := b.ceiling(ctx, "redis-forward", rds.max/2, "-mode", "redis", "-forward", "http://"+sinkAddr+"/ceiling", "-forward-workers", strconv.Itoa(forwardWorkers))
	if err != nil {
		return report{}, err
	}
	drain, err := b.drain(ctx)
	if err != nil {
		return report{}, err
	}
	agent, err := b.agent(ctx)
	if err != nil {
		return report{}, err
	}
	return report{
		rows:    tableRows(emb, rds, bolt, lua, fwd, drain, agent, b.sz),
		details: detailTables(emb, rds, bolt, lua, fwd, drain, agent),
	}, nil
}

// relay measures relay serve on one store. Webhook 1001 goes to a
// destination on the sink (ingest and delivery together, as the issue's
// rows were measured); 1002 to queueFanout agent destinations nobody
// serves, so its deliveries stay queued for the RSS row.
func (b *bench) relay(ctx context.Context, store, sinkAddr string) (measured, error) {
	var m measured
	logf("relay serve, %s store", store)
	listen, err := freeAddr()
	if err != nil {
		return m, err
	}
	admin, err := freeAddr()
	if err != nil {
		return m, err
	}
	var storeYAML string
	var redis *proc
	if store == "redis" {
		if redis, err = b.startRedis("relay"); err != nil {
			return m, err
		}
		defer b.stop(redis)
		storeYAML = fmt.Sprintf(`{redis: {url: "redis://%s/0", prefix: "bench:"}}`, redis.addr)
	} else {
		storeYAML = fmt.Sprintf(`{embedded: {path: %q}}`, b.path("relay-embedded"))
	}
	cfg := fmt.Sprintf(`listen: %q
admin: {listen: %q}
store: %s
routes:
  - {webhook_id: "1001", to: [sink]}
  - {webhook_id: "1002", to: [q1, q2, q3, q4]}
agents: [{name: bench, token: bench-agent-token-not-used-0123456789}]
destinations:
  - {name: sink, url: "http://%s/relay", concurrency: %d}
  - {name: q1, url: "http://127.0.0.1:1/q1", agent: bench}
  - {name: q2, url: "http://127.0.0.1:1/q2", agent: bench}
  - {name: q3, url: "http://127.0.0.1:1/q3", agent: bench}
  - {name: q4, url: "http://127.0.0.1:1/q4", agent: bench}
`, listen, admin, storeYAML, sinkAddr, forwardWorkers)
	cfgPath := b.path("relay-" + store + ".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return m, err
	}
	serve := []string{b.path("relay"), "serve", "-config", cfgPath, "-log-level", "warn"}
	p, err := b.start("relay-"+store, listen, serve...)
	if err != nil {
		return m, err
	}
	defer func() { b.stop(p) }()
	metrics := "http://" + admin + "/metrics"
	if err := waitReady("http://" + admin + "/readyz"); err != nil {
		return m, err
	}
	time.Sleep(time.Second)
	m.rssIdle = memOf(p.pid())

	hook := "http://" + listen + "/hooks/1001"
	redisPID, redisAddr := 0, ""
	if redis != nil {
		redisPID, redisAddr = redis.pid(), redis.addr
	}
	r, peak, err := b.closedLoop(hook, p.pid(), redisPID, b.sink.pid())
	if err != nil {
		return m, err
	}
	m.max, m.rssLoad, m.maxRun = r.Rate, peak[0], r
	t0 := time.Now()
	if err := waitDrained(ctx, metrics, "sink"); err != nil {
		return m, err
	}
	m.drainAfter = time.Since(t0)
	for _, lr := range []struct {
		rate float64
		to   *loadResult
	}{{fixedRate, &m.at2000}, {m.max / 2, &m.atHalf}} {
		if *lr.to, err = b.openLoop(hook, lr.rate, redisAddr); err != nil {
			return m, err
		}
		if err := waitDrained(ctx, metrics, "sink"); err != nil {
			return m, err
		}
	}

	logf("  queueing %d deliveries", b.sz.queue)
	q, _, err := b.load("http://"+listen+"/hooks/1002", nil, "-conns", strconv.Itoa(conns),
		"-duration", "1h", "-count", strconv.Itoa(b.sz.queue/queueFanout))
	if err != nil {
		return m, err
	}
	logf("  queued at %.0f events/s", q.Rate)
	time.Sleep(time.Second)
	if m.queued, err = queueDepth(metrics, "q"); err != nil {
		return m, err
	}
	m.rssQueue = memOf(p.pid())
	// Right after queueing, the process still holds the garbage of the
	// load; restarted, its anonymous memory is what the queue itself costs
	// it. On the embedded store the rest is relay.db mapped: bbolt reads
	// the whole file on open to rebuild its freelist.
	b.stop(p)
	if p, err = b.start("relay-"+store+"-restarted", listen, serve...); err != nil {
		return m, err
	}
	if err := waitReady("http://" + admin + "/readyz"); err != nil {
		return m, err
	}
	time.Sleep(2 * time.Second)
	m.rssRestarted = memOf(p.pid())
	if redis != nil {
		m.redisQueue = memOf(redis.pid()).rss
	}
	return m, nil
}

// ceiling measures one bench/ceiling mode: its maximum, and its latency at
// 2,000 req/s and at half of the matching Relay's maximum.
func (b *bench) ceiling(ctx context.Context, name string, half float64, args ...string) (measured, error) {
	var m measured
	logf("ceiling %s", name)
	addr, err := freeAddr()
	if err != nil {
		return m, err
	}
	drained := func() error { return nil }
	redisPID, redisAddr := 0, ""
	if strings.HasPrefix(name, "redis") {
		redis, err := b.startRedis(name)
		if err != nil {
			return m, err
		}
		defer b.stop(redis)
		redisPID, redisAddr = redis.pid(), redis.addr
		args = append(args, "-redis", "redis://"+redis.addr+"/0")
		if slices.Contains(args, "-forward") {
			drained = func() error { return waitStreamDrained(ctx, redis.addr) }
		}
	}
	p, err := b.start("ceiling-"+name, addr, append([]string{b.path("ceiling"), "-listen", addr}, args...)...)
	if err != nil {
		return m, err
	}
	defer b.stop(p)
	time.Sleep(time.Second)
	m.rssIdle = memOf(p.pid())
	url := "http://" + addr + "/hooks/1001"
	r, peak, err := b.closedLoop(url, p.pid(), redisPID, b.sink.pid())
	if err != nil {
		return m, err
	}
	m.max, m.rssLoad, m.maxRun = r.Rate, peak[0], r
	t0 := time.Now()
	if err := drained(); err != nil {
		return m, err
	}
	m.drainAfter = time.Since(t0)
	if m.at2000, err = b.openLoop(url, fixedRate, redisAddr); err != nil {
		return m, err
	}
	if err := drained(); err != nil {
		return m, err
	}
	if m.atHalf, err = b.openLoop(url, half, redisAddr); err != nil {
		return m, err
	}
	return m, nil
}

// waitStreamDrained waits until the ceiling's forwarder has delivered and
// acknowledged every entry of its stream, as waitDrained does for Relay.
func waitStreamDrained(ctx context.Context, addr string) error {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(drainLimit)
	for time.Now().Before(deadline) {
		groups, err := rdb.XInfoGroups(ctx, "ceil:stream").Result()
		if err != nil {
			return fmt.Errorf("XINFO GROUPS: %w", err)
		}
		if len(groups) == 1 && groups[0].Lag == 0 && groups[0].Pending == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the ceiling's forwarder did not drain its stream within %s", drainLimit)
}

func waitReady(url string) error {
	for range 200 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered 200", url)
}

// waitDrained waits until the destination's queue is empty, so the next
// measurement does not run beside the last one's backlog.
func waitDrained(ctx context.Context, metricsURL, dest string) error {
	re := regexp.MustCompile(`(?m)^relay_queue_depth\{destination="` + regexp.QuoteMeta(dest) + `"\} (\S+)$`)
	deadline := time.Now().Add(drainLimit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(metricsURL)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := re.FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("%s has no relay_queue_depth for %s", metricsURL, dest)
		}
		if v, _ := strconv.ParseFloat(string(m[1]), 64); v == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the %s queue did not drain within %s", dest, drainLimit)
}

// metricsPage reads a relay's /metrics page.
func metricsPage(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return body, nil
}

// queueDepth sums relay_queue_depth over the destinations whose names
// start with prefix.
func queueDepth(metricsURL, prefix string) (int, error) {
	body, err := metricsPage(metricsURL)
	if err != nil {
		return 0, err
	}
	re := regexp.MustCompile(`(?m)^relay_queue_depth\{destination="` + regexp.QuoteMeta(prefix) + `[^"]*"\} (\S+)$`)
	total := 0.0
	for _, m := range re.FindAllSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		total += v
	}
	return int(total), nil
}

// benchMetrics runs a compiled test binary's benchmark and returns its
// reported metrics by unit, per sub-benchmark.
func (b *bench) benchMetrics(ctx context.Context, bin, dir, pattern, benchtime string, env ...string) (map[string]map[string]float64, error) {
	cmd := exec.CommandContext(ctx, b.path(bin), "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime)
	cmd.Dir = filepath.Join(b.root, dir) // the benchmarks find testdata relative to their package
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", bin, err, out)
	}
	return parseBench(string(out)), nil
}

// gomaxprocsSuffix is the "-8" go test appends to a benchmark's name.
var gomaxprocsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads go test -bench output: for every result line, the
// benchmark's name (without the GOMAXPROCS suffix) and its metrics by unit.
func parseBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a log line that starts with a benchmark's name
		}
		name := gomaxprocsSuffix.ReplaceAllString(f[0], "")
		res[name] = map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				res[name][f[i+1]] = v
			}
		}
	}
	return res
}

type drainResult struct{ bolt, redis map[string]float64 }

// drain is BenchmarkDeliverBacklog (relay/deliver): a queued backlog
// delivered to a local sink, beside plain POSTs and, for Redis, a minimal
// stream forwarder.
func (b *bench) drain(ctx context.Context) (drainResult, error) {
	logf("drain of %d events (BenchmarkDeliverBacklog)", b.sz.drain)
	m, err := b.benchMetrics(ctx, "deliver.test", "relay/deliver", "DeliverBacklog/store=(bolt|redis)$", "1x",
		"RELAY_BENCH_EVENTS="+strconv.Itoa(b.sz.drain))
	if err != nil {
		return drainResult{}, err
	}
	d := drainResult{bolt: m["BenchmarkDeliverBacklog/store=bolt"], redis: m["BenchmarkDeliverBacklog/store=redis"]}
	if d.bolt == nil || d.redis == nil {
		return d, fmt.Errorf("BenchmarkDeliverBacklog reported %v", m)
	}
	return d, nil
}

// agent is BenchmarkAgent (relay/agent): one backlog through one agent and
// the same backlog delivered directly.
func (b *bench) agent(ctx context.Context) (map[string]float64, error) {
	logf("agent vs direct, %d events (BenchmarkAgent)", b.sz.agent)
	m, err := b.benchMetrics(ctx, "agent.test", "relay/agent", "^BenchmarkAgent$", strconv.Itoa(b.sz.agent)+"x")
	if err != nil {
		return nil, err
	}
	a := m["BenchmarkAgent"]
	if a == nil {
		return nil, fmt.Errorf("BenchmarkAgent reported %v", m)
	}
	return a, nil
}

// row is one line of the table.
type row struct{ name, relay, ceiling, ratio string }

func tableRows(emb, rds, bolt, lua, fwd measured, d drainResult, agent map[string]float64, sz sizes) []row {
	rate := func(v float64) string { return thousands(v) + "/s" }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	lat := func(r loadResult) string { return fmt.Sprintf("%.1f / %.1f / %.1f ms", r.P50, r.P99, r.P999) }
	latRatio := func(a, b loadResult) string {
		return ratio(a.P50, b.P50) + " / " + ratio(a.P99, b.P99) + " / " + ratio(a.P999, b.P999)
	}
	mibs := func(v int64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) }
	// An RSS with its anonymous part: the rest is mostly a mapped file.
	mib := func(m mem) string { return fmt.Sprintf("%s (anon %.0f)", mibs(m.rss), float64(m.anon)/(1<<20)) }
	rows := []row{
		{"ingest, embedded store vs net/http + bbolt Batch per request", rate(emb.max), rate(bolt.max), ratio(emb.max, bolt.max)},
		{"ingest, Redis store vs net/http + one Lua script (AOF everysec)", rate(rds.max), rate(lua.max), ratio(rds.max, lua.max)},
		{"ingest, Redis store vs the same + stream forwarder (end to end)", rate(rds.max), rate(fwd.max), ratio(rds.max, fwd.max)},
		{"delivered end to end (the closed loop's callbacks over it and the drain after it), embedded store", rate(endToEnd(emb)) + drainNote(emb), "–", "–"},
		{"delivered end to end, Redis store vs the same + stream forwarder", rate(endToEnd(rds)) + drainNote(rds), rate(endToEnd(fwd)) + drainNote(fwd), ratio(endToEnd(rds), endToEnd(fwd))},
		{fmt.Sprintf("drain of %s, embedded store vs plain POSTs", thousands(float64(sz.drain))),
			rate(d.bolt["relay-deliveries/s"]), rate(d.bolt["ceiling-posts/s"]), ratio(d.bolt["relay-deliveries/s"], d.bolt["ceiling-posts/s"])},
		{fmt.Sprintf("drain of %s, Redis store vs stream forwarder", thousands(float64(sz.drain))),
			rate(d.redis["relay-deliveries/s"]), rate(d.redis["forwarder-deliveries/s"]), ratio(d.redis["relay-deliveries/s"], d.redis["forwarder-deliveries/s"])},
	}
	for _, c := range []struct {
		name      string
		relay, ce measured
	}{{"embedded vs bbolt Batch", emb, bolt}, {"Redis vs Lua script", rds, lua}, {"Redis vs end to end", rds, fwd}} {
		rows = append(rows,
			row{fmt.Sprintf("p50/p99/p99.9 at %d/s, %s", fixedRate, c.name), lat(c.relay.at2000), lat(c.ce.at2000), latRatio(c.relay.at2000, c.ce.at2000)},
			row{fmt.Sprintf("p50/p99/p99.9 at %s/s (half of Relay's max), %s", thousands(c.relay.max/2), c.name), lat(c.relay.atHalf), lat(c.ce.atHalf), latRatio(c.relay.atHalf, c.ce.atHalf)})
	}
	rss := func(a, b mem) string { return ratio(float64(a.rss), float64(b.rss)) }
	rows = append(rows,
		row{"RSS idle, embedded vs bbolt ceiling", mib(emb.rssIdle), mib(bolt.rssIdle), rss(emb.rssIdle, bolt.rssIdle)},
		row{"RSS under load (peak), embedded vs bbolt ceiling", mib(emb.rssLoad), mib(bolt.rssLoad), rss(emb.rssLoad, bolt.rssLoad)},
		row{fmt.Sprintf("RSS with %s queued deliveries (%d per event), embedded: after queueing / restarted", thousands(float64(emb.queued)), queueFanout),
			mib(emb.rssQueue) + " / " + mib(emb.rssRestarted), "–", "–"},
		row{"RSS idle, Redis store vs end-to-end ceiling", mib(rds.rssIdle), mib(fwd.rssIdle), rss(rds.rssIdle, fwd.rssIdle)},
		row{"RSS under load (peak), Redis store vs end-to-end ceiling", mib(rds.rssLoad), mib(fwd.rssLoad), rss(rds.rssLoad, fwd.rssLoad)},
		row{fmt.Sprintf("RSS with %s queued deliveries (%d per event), Redis store: after queueing / restarted (redis-server)", thousands(float64(rds.queued)), queueFanout),
			mib(rds.rssQueue) + " / " + mib(rds.rssRestarted) + " (redis-server " + mibs(rds.redisQueue) + ")", "–", "–"},
		row{fmt.Sprintf("agent vs direct delivery, %s events, embedded store", thousands(float64(sz.agent))),
			rate(agent["agent/s"]), rate(agent["direct/s"]) + " direct", ratio(agent["agent/s"], agent["direct/s"])},
	)
	return rows
}

// endToEnd is the closed loop's accepted callbacks over the loop and the
// drain after it: the rate at which they were all delivered.
func endToEnd(m measured) float64 {
	if t := m.maxRun.elapsed + m.drainAfter; t > 0 {
		return float64(m.maxRun.OK) / t.Seconds()
	}
	return 0
}

// drainNote says how long the drain after the closed loop took.
func drainNote(m measured) string {
	return fmt.Sprintf(" (drained %.1f s after)", m.drainAfter.Seconds())
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// detailTables keep what the old scripts reported beside the rates: CPU
// per request of every process in the closed-loop runs, and the delivery
// and agent benchmarks' own metrics.
func detailTables(emb, rds, bolt, lua, fwd measured, d drainResult, agent map[string]float64) []table {
	us := func(cpu time.Duration, n int) string {
		if n == 0 || cpu == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", float64(cpu.Microseconds())/float64(n))
	}
	closed := table{
		title: "Closed-loop runs: CPU per 2xx answer of each process, and the rest of the machine (% of one core)",
		head:  []string{"server", "req/s", "non-2xx", "server µs", "redis-server µs", "sink µs", "bench/load µs", "other"},
	}
	for _, c := range []struct {
		name string
		m    measured
	}{{"relay serve, embedded", emb}, {"ceiling: bbolt Batch", bolt}, {"relay serve, Redis", rds}, {"ceiling: Lua script", lua}, {"ceiling: Lua script + forwarder", fwd}} {
		r := c.m.maxRun
		if len(r.cpu) < 3 {
			continue
		}
		var mine time.Duration
		for _, v := range r.cpu {
			mine += v
		}
		other := 100 * (r.machine - mine - r.loadCPU).Seconds() / r.elapsed.Seconds()
		closed.rows = append(closed.rows, []string{c.name, thousands(r.Rate), strconv.Itoa(r.Failed),
			us(r.cpu[0], r.OK), us(r.cpu[1], r.OK), us(r.cpu[2], r.OK), us(r.loadCPU, r.OK), fmt.Sprintf("%.0f %%", max(other, 0))})
	}
	f := func(m map[string]float64, k string) string {
		v, ok := m[k]
		if !ok {
			return "–"
		}
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	drain := table{
		title: "Drain (BenchmarkDeliverBacklog): per delivery",
		head:  []string{"store", "relay CPU µs", "ceiling CPU µs/POST", "redis-server CPU µs", "forwarder's redis-server CPU µs", "relay allocs", "deliveries/commit", "AOF rewrites"},
	}
	for _, c := range []struct {
		name string
		m    map[string]float64
	}{{"embedded", d.bolt}, {"Redis", d.redis}} {
		drain.rows = append(drain.rows, []string{c.name, f(c.m, "relay-cpu-us/delivery"), f(c.m, "ceiling-cpu-us/post"),
			f(c.m, "redis-cpu-us/delivery"), f(c.m, "forwarder-redis-cpu-us/delivery"), f(c.m, "relay-allocs/delivery"),
			f(c.m, "deliveries/commit"), f(c.m, "redis-forks")})
	}
	ag := table{
		title: "Agent (BenchmarkAgent): process CPU per delivery",
		head:  []string{"direct /s", "agent /s", "tls-proxy /s", "direct µs", "agent µs"},
		rows: [][]string{{thousands(agent["direct/s"]), thousands(agent["agent/s"]), thousands(agent["tls-proxy/s"]),
			f(agent, "direct-cpu-µs"), f(agent, "agent-cpu-µs")}},
	}
	open := table{
		title: "Open-loop runs: requests sent more than 1 ms after their scheduled time (all connections busy, or the generator short of CPU), and redis-server's forks during the run (AOF rewrites)",
		head:  []string{"server", "rate", "sent", "late", "failed", "redis forks"},
	}
	for _, c := range []struct {
		name string
		m    measured
	}{{"relay serve, embedded", emb}, {"ceiling: bbolt Batch", bolt}, {"relay serve, Redis", rds}, {"ceiling: Lua script", lua}, {"ceiling: Lua script + forwarder", fwd}} {
		for _, r := range []loadResult{c.m.at2000, c.m.atHalf} {
			fk := "–"
			if r.forks >= 0 {
				fk = strconv.FormatInt(r.forks, 10)
			}
			open.rows = append(open.rows, []string{c.name, thousands(r.target) + "/s", strconv.Itoa(r.Sent), strconv.Itoa(r.Late), strconv.Itoa(r.Failed), fk})
		}
	}
	return []table{closed, open, drain, ag}
}

func printReport(w io.Writer, label string, sz sizes, rep report, took time.Duration) {
	printTable(w, label, sz, rep.rows, took)
	for _, t := range rep.details {
		fmt.Fprintf(w, "\n%s:\n\n| %s |\n|%s\n", t.title, strings.Join(t.head, " | "), strings.Repeat(" --- |", len(t.head)))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
	}
}

func printTable(w io.Writer, label string, sz sizes, rows []row, took time.Duration) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "run: %s, %s; %d CPUs (%s), load average at the end %s\n", label, time.Now().UTC().Format("2006-01-02 15:04 MST"),
		runtime.NumCPU(), cpuModel(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(w, "load: bench/load, seed callback with a unique mid; maxima closed loop, %d connections, %s; latency open loop (wrk2's method), %s per rate, from the scheduled start\n\n",
		conns, sz.ingest, sz.latency)
	fmt.Fprintln(w, "| row | Relay | ceiling | Relay / ceiling |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.name, r.relay, r.ceiling, r.ratio)
	}
	fmt.Fprintf(w, "\n(the run took %s)\n", took.Round(time.Second))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
