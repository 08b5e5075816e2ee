package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// scaleStore is one store the scale run puts several relays on.
type scaleStore struct {
	name       string
	tag        string // in file names
	cluster    bool
	partitions int // 0: the relay's default (1 on one Redis, 16 on a cluster)
}

var (
	scaleStores = []scaleStore{
		{name: "one Redis, 1 partition", tag: "redis"},
		{name: "one Redis, 16 partitions", tag: "redis16", partitions: 16},
		{name: "3-master cluster, 16 partitions", tag: "cluster", cluster: true},
	}
	scaleProcs = []int{1, 2, 4}
)

// scaleRun is what one store with k relays gave.
type scaleRun struct {
	store     string
	procs     int
	ingest    loadResult    // the closed loop, split over the relays
	delivered int           // successful deliveries to the sink, summed over the relays
	drain     time.Duration // from the end of the load until every queue was empty
	elapsed   time.Duration // from the start of the load until then
	// CPU from the start of the load until drained, each group summed.
	relayCPU, redisCPU, sinkCPU, loadCPU, machine time.Duration
}

// scale is BENCH_SCALE=1: one, two and four relay processes on each store,
// the closed loop split across them, timed until every delivery is made.
func (b *bench) scale(ctx context.Context) ([]scaleRun, error) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, fmt.Errorf("redis-cli is missing (make deps installs it): %w", err)
	}
	if err := b.build(ctx, false); err != nil {
		return nil, err
	}
	sinkAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sink, err := b.start("sink", sinkAddr, b.path("ceiling"), "-mode", "bare", "-listen", sinkAddr)
	if err != nil {
		return nil, err
	}
	b.sink = sink
	defer b.stop(sink)
	var runs []scaleRun
	for _, st := range scaleStores {
		for _, k := range scaleProcs {
			r, err := b.scaleOne(ctx, st, k, sinkAddr)
			if err != nil {
				return runs, fmt.Errorf("%s, %d relays: %w", st.name, k, err)
			}
			runs = append(runs, r)
		}
	}
	return runs, nil
}

// scaleOne starts a fresh store and k relays on it (same prefix), each
// routing webhook 1001 to the sink, and measures them.
func (b *bench) scaleOne(ctx context.Context, st scaleStore, k int, sinkAddr string) (scaleRun, error) {
	run := scaleRun{store: st.name, procs: k}
	logf("scale: %s, %d relay processes", st.name, k)
	name := fmt.Sprintf("scale-%s-%d", st.tag, k)
	var nodes []*proc
	var url string
	var err error
	if st.cluster {
		nodes, url, err = b.startCluster(ctx, name)
	} else if p, perr := b.startRedis(name); perr == nil {
		nodes, url = []*proc{p}, "redis://"+p.addr+"/0"
	} else {
		err = perr
	}
	// Each store's AOF goes once its run is over: nine runs would
	// otherwise pile up their logs in the work directory.
	defer func() {
		for _, p := range nodes {
			b.stop(p)
		}
		os.RemoveAll(b.path("redis-" + name))
		for i := range 3 {
			os.RemoveAll(b.path(fmt.Sprintf("redis-%s-%d", name, i)))
		}
	}()
	if err != nil {
		return run, err
	}
	var relays []*proc
	defer func() {
		for _, p := range relays {
			b.stop(p)
		}
	}()
	var hooks, metrics []string
	for i := range k {
		listen, err := freeAddr()
		if err != nil {
			return run, err
		}
		admin, err := freeAddr()
		if err != nil {
			return run, err
		}
		cfg := fmt.Sprintf(`listen: %q
admin: {listen: %q}
store: {redis: {url: %q, prefix: "bench:", cluster: %t, partitions: %d}}
routes: [{webhook_id: "1001", to: [sink]}]
destinations: [{name: sink, url: "http://%s/relay"}]
`, listen, admin, url, st.cluster, st.partitions, sinkAddr)
		cfgPath := b.path(fmt.Sprintf("relay-%s-%d.yaml", name, i))
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return run, err
		}
		p, err := b.start(fmt.Sprintf("relay-%s-%d", name, i), listen, b.path("relay"), "serve", "-config", cfgPath, "-log-level", "warn")
		if err != nil {
			return run, err
		}
		relays = append(relays, p)
		if err := waitReady("http://" + admin + "/readyz"); err != nil {
			return run, err
		}
		hooks = append(hooks, "http://"+listen+"/hooks/1001")
		metrics = append(metrics, "http://"+admin+"/metrics")
	}
	time.Sleep(time.Second)

	cpu := func(ps []*proc) time.Duration {
		var sum time.Duration
		for _, p := range ps {
			sum += procCPU(p.pid())
		}
		return sum
	}
	relay0, redis0, sink0 := cpu(relays), cpu(nodes), procCPU(b.sink.pid())
	busy0, t0 := machineBusy(), time.Now()
	args := []string{"-conns", strconv.Itoa(conns), "-duration", b.sz.ingest.String()}
	for _, h := range hooks[1:] {
		args = append(args, "-url", h)
	}
	res, _, err := b.load(hooks[0], nil, args...)
	if err != nil {
		return run, err
	}
	loaded := time.Now()
	for _, m := range metrics {
		if err := waitDrained(ctx, m, "sink"); err != nil {
			return run, err
		}
	}
	run.drain, run.elapsed = time.Since(loaded), time.Since(t0)
	run.machine = machineBusy() - busy0
	run.relayCPU, run.redisCPU, run.sinkCPU = cpu(relays)-relay0, cpu(nodes)-redis0, procCPU(b.sink.pid())-sink0
	run.ingest, run.loadCPU = res, res.loadCPU
	for _, m := range metrics {
		n, err := delivered(m, "sink")
		if err != nil {
			return run, err
		}
		run.delivered += n
	}
	logf("  ingest %.0f/s; %d accepted, %d delivered, drained %s after the load", res.Rate, res.OK, run.delivered, run.drain.Round(100*time.Millisecond))
	if run.delivered < res.OK {
		logf("  %d accepted callbacks were not delivered", res.OK-run.delivered)
	}
	return run, nil
}

// startCluster starts three redis-servers in cluster mode (appendonly,
// everysec, like startRedis) and joins them as masters with no replicas,
// as internal/testredis does, and returns them with a URL naming every
// master as a seed.
func (b *bench) startCluster(ctx context.Context, name string) ([]*proc, string, error) {
	var nodes, addrs []string
	var procs []*proc
	for i := range 3 {
		bus, err := freeAddr()
		if err != nil {
			return procs, "", err
		}
		_, busPort, _ := net.SplitHostPort(bus)
		// The bus port is chosen too: the default, port+10000, can fall
		// outside the port range for an ephemeral port. Without full
		// coverage required, as the README asks of a cluster without
		// replicas.
		p, err := b.startRedis(fmt.Sprintf("%s-%d", name, i), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", busPort, "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no")
		if err != nil {
			return procs, "", err
		}
		procs = append(procs, p)
		addrs = append(addrs, p.addr)
		if i > 0 {
			nodes = append(nodes, "addr="+p.addr)
		}
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return procs, "", fmt.Errorf("redis-cli %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	for _, a := range addrs {
		if err := waitClusterOK(ctx, a); err != nil {
			return procs, "", err
		}
	}
	return procs, "redis://" + addrs[0] + "?" + strings.Join(nodes, "&"), nil
}

// waitClusterOK waits until the node at addr reports the cluster ok with
// every slot served.
func waitClusterOK(ctx context.Context, addr string) error {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	last := ""
	for range 600 {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err == nil && clusterOK(info) {
			return nil
		}
		last = info
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster node %s not ok within a minute: %s", addr, last)
}

// clusterOK says whether CLUSTER INFO's reply is a cluster ok with all
// 16384 slots served.
func clusterOK(info string) bool {
	f := map[string]string{}
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			f[k] = v
		}
	}
	return f["cluster_state"] == "ok" && f["cluster_slots_ok"] == "16384"
}

// delivered is a relay's count of successful deliveries to dest.
func delivered(metricsURL, dest string) (int, error) {
	body, err := metricsPage(metricsURL)
	if err != nil {
		return 0, err
	}
	return successes(string(body), dest), nil
}

// successes reads relay_deliveries_total{destination=dest,outcome="success"}
// from a Prometheus text page; 0 when the relay has made none.
func successes(page, dest string) int {
	re := regexp.MustCompile(`(?m)^relay_deliveries_total\{destination="` + regexp.QuoteMeta(dest) + `",outcome="success"\} (\S+)$`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return int(v)
}

var scaleHead = []string{"store", "relay processes", "ingest 2xx/s", "delivered/s end to end", "drained after the load",
	"relay µs/callback", "redis µs/callback", "sink µs", "bench/load µs", "machine busy", "other (% of one core)"}

// row is one line of the scale table. CPU is per callback, from the start
// of the load until the last delivery; machine busy is of every CPU, other
// is what none of the run's processes used. Callbacks are the deliveries
// made when more: a request cut off by the end of the load is not counted
// as answered but may have been accepted.
func (r scaleRun) row(cpus int) []string {
	n := max(r.ingest.OK, r.delivered)
	us := func(d time.Duration) string {
		if n == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", float64(d.Microseconds())/float64(n))
	}
	perSec := func(n int) string {
		if r.elapsed <= 0 {
			return "–"
		}
		return thousands(float64(n) / r.elapsed.Seconds())
	}
	busy, other := "–", "–"
	if r.elapsed > 0 && cpus > 0 {
		busy = fmt.Sprintf("%.0f %%", 100*r.machine.Seconds()/(r.elapsed.Seconds()*float64(cpus)))
		mine := r.relayCPU + r.redisCPU + r.sinkCPU + r.loadCPU
		other = fmt.Sprintf("%.0f %%", max(0, 100*(r.machine-mine).Seconds()/r.elapsed.Seconds()))
	}
	return []string{r.store, strconv.Itoa(r.procs), thousands(r.ingest.Rate), perSec(r.delivered),
		fmt.Sprintf("%.1f s", r.drain.Seconds()), us(r.relayCPU), us(r.redisCPU), us(r.sinkCPU), us(r.loadCPU), busy, other}
}

func printScale(w io.Writer, label string, sz sizes, runs []scaleRun, load0 string, took time.Duration) {
	fmt.Fprintf(w, "run: scale, %s, %s; %d CPUs (%s), load average at the start %s, at the end %s\n", label,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), load0, loadAverage())
	fmt.Fprintf(w, "load: bench/load, seed callback with a unique mid, closed loop, %d connections split over the relays, %s; one route to a bare sink\n\n",
		conns, sz.ingest)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(scaleHead, " | "), strings.Repeat(" --- |", len(scaleHead)))
	for _, r := range runs {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r.row(runtime.NumCPU()), " | "))
	}
	fmt.Fprintf(w, "\n(the run took %s)\n", took.Round(time.Second))
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
