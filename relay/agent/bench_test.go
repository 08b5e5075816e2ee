//go:build unix

package agent_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/gctune"
	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/agent/agenttest"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
	"github.com/relaygw/relay/relay/store/storetest"
)

// benchBody is the size and shape of the provider's seed callback.
var benchBody = storetest.SeedBody(0)

const benchConcurrency = 8

// BenchmarkAgent measures deliveries per second from a queued backlog of
// b.N callbacks to a local sink answering 200, each delivery leased, signed
// (Standard Webhooks), attempted and its outcome recorded in a real embedded
// store, three ways one after the other in the same iteration, so that each
// iteration gives a comparable set on a shared machine:
//
//   - direct: the relay's own workers (deliver.Manager), the baseline;
//   - agent: one agent over plain HTTP to the relay's agent endpoint;
//   - tls-proxy: the same agent through a CONNECT proxy and TLS.
//
// Same destination concurrency (8) and agent concurrency (8) throughout,
// and the garbage collector set as relay serve and relay agent set it
// (gctune). agent/direct is the agent's rate as a percentage of direct's.
func BenchmarkAgent(b *testing.B) {
	b.Cleanup(gctune.Apply(os.Getenv))
	sk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer sk.Close()
	dest := config.Destination{Name: "sink", URL: sk.URL, Concurrency: benchConcurrency,
		SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	b.StopTimer() // each way times itself
	direct := runDirect(b, dest)
	viaAgent := runAgent(b, dest, false)
	viaProxy := runAgent(b, dest, true)
	b.ReportMetric(direct.rate, "direct/s")
	b.ReportMetric(viaAgent.rate, "agent/s")
	b.ReportMetric(viaProxy.rate, "tls-proxy/s")
	b.ReportMetric(100*viaAgent.rate/direct.rate, "agent/direct-%")
	// CPU per delivery (the whole process: relay, agent and sink) is
	// steadier than the rates on a shared machine.
	b.ReportMetric(direct.cpu, "direct-cpu-µs")
	b.ReportMetric(viaAgent.cpu, "agent-cpu-µs")
	b.ReportMetric(0, "ns/op")
}

// result is one way's deliveries per second and process CPU microseconds
// per delivery.
type result struct{ rate, cpu float64 }

var quiet = slog.New(slog.DiscardHandler)

// runDirect delivers a backlog of b.N with a Manager and returns the rate.
func runDirect(b *testing.B, dest config.Destination) result {
	st := backlog(b, b.N)
	defer st.Close()
	all, onAttempt := counter(b.N)
	m, err := deliver.NewManager(st, []config.Destination{dest}, deliver.Options{
		Logger: quiet, PollInterval: 5 * time.Millisecond, OnAttempt: onAttempt,
	})
	if err != nil {
		b.Fatal(err)
	}
	return measure(b, all, m.Run)
}

// runAgent delivers a backlog of b.N through an agent and returns the rate.
func runAgent(b *testing.B, dest config.Destination, viaProxy bool) result {
	st := backlog(b, b.N)
	defer st.Close()
	all, onAttempt := counter(b.N)
	dest.Agent = "bench"
	cfg := &config.Config{Agents: []config.Agent{{Name: "bench", Token: "t"}}, Destinations: []config.Destination{dest}}
	cfg.SetDefaults()
	m, err := deliver.NewManager(st, cfg.Destinations, deliver.Options{Logger: quiet, OnAttempt: onAttempt})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := agent.NewServer(st, m, cfg, agent.ServerOptions{Logger: quiet, PollInterval: 5 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	relaySrv := httptest.NewServer(srv.Handler())
	defer relaySrv.Close()
	defer srv.Close()
	opts := agent.ClientOptions{
		Server: relaySrv.URL, Insecure: true, Name: "bench", Token: "t",
		Concurrency: benchConcurrency, Logger: quiet,
	}
	if viaProxy {
		var stop func()
		opts, stop = throughProxy(b, opts, relaySrv.URL)
		defer stop()
	}
	c, err := agent.NewClient(opts)
	if err != nil {
		b.Fatal(err)
	}
	return measure(b, all, c.Run)
}

// backlog opens a store holding n queued deliveries to "sink"; the caller
// closes it. Accepts run in parallel so the store commits them in groups.
func backlog(b *testing.B, n int) *bolt.Store {
	b.Helper()
	st, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: benchBody, ReceivedAt: time.Now()}
				dd := store.Dedupe{Key: fmt.Sprint("1001:", i), TTL: time.Hour}
				if _, err := st.Accept(context.Background(), ev, []string{"sink"}, dd); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return st
}

// counter returns a channel closed after n successful attempts and the
// OnAttempt hook that counts them.
func counter(n int) (<-chan struct{}, func(string, deliver.Outcome, int, time.Duration)) {
	all := make(chan struct{})
	var done atomic.Int64
	return all, func(_ string, o deliver.Outcome, _ int, _ time.Duration) {
		if o == deliver.OutcomeSuccess && done.Add(1) == int64(n) {
			close(all)
		}
	}
}

// measure runs run until every delivery is recorded and returns the rate
// and the CPU per delivery.
func measure(b *testing.B, all <-chan struct{}, run func(context.Context) error) result {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cpu0 := cpuTime()
	start := time.Now()
	go func() { done <- run(ctx) }()
	<-all
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	cancel()
	<-done
	return result{rate: float64(b.N) / elapsed.Seconds(), cpu: float64(cpu.Microseconds()) / float64(b.N)}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughProxy points opts at a TLS front of relayURL via a CONNECT proxy;
// stop closes both.
func throughProxy(b *testing.B, opts agent.ClientOptions, relayURL string) (agent.ClientOptions, func()) {
	u, _ := url.Parse(relayURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // cancelled polls at the end
	front := httptest.NewUnstartedServer(rp)
	front.Config.ErrorLog = rp.ErrorLog
	front.StartTLS()
	roots := x509.NewCertPool()
	roots.AddCert(front.Certificate())
	proxy := agenttest.NewProxy(b)
	opts.Server, opts.Insecure, opts.RootCAs = front.URL, false, roots
	opts.Proxy = http.ProxyURL(proxy.URL)
	return opts, func() {
		proxy.Close()
		front.Close()
	}
}
