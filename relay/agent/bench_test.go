package agent_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/agent/agenttest"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// benchBody is the size and shape of the provider's seed callback.
var benchBody = []byte(`{
      "bridge": 918068280000,
      "from": 918919520000,
      "to": 918867130000,
      "source": "OBD",
      "mid": "1234-1333-00000",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}`)

const benchConcurrency = 8

// BenchmarkAgent measures deliveries per second from a queued backlog of
// b.N callbacks to a local sink answering 200, each delivery leased, signed
// (Standard Webhooks), attempted and its outcome recorded in a real embedded
// store:
//
//   - direct: the relay's own workers (deliver.Manager), the baseline;
//   - agent: one agent over plain HTTP to the relay's agent endpoint;
//   - agent-tls-proxy: the same agent through a CONNECT proxy and TLS.
//
// Same destination concurrency (8) and agent concurrency (8) throughout.
func BenchmarkAgent(b *testing.B) {
	sk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(sk.Close)
	quiet := slog.New(slog.DiscardHandler)
	dest := config.Destination{Name: "sink", URL: sk.URL, Concurrency: benchConcurrency,
		SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}

	b.Run("direct", func(b *testing.B) {
		st := backlog(b, b.N)
		all, onAttempt := counter(b.N)
		m, err := deliver.NewManager(st, []config.Destination{dest}, deliver.Options{
			Logger: quiet, PollInterval: 5 * time.Millisecond, OnAttempt: onAttempt,
		})
		if err != nil {
			b.Fatal(err)
		}
		measure(b, all, m.Run)
	})

	for _, viaProxy := range []bool{false, true} {
		name := "agent"
		if viaProxy {
			name = "agent-tls-proxy"
		}
		b.Run(name, func(b *testing.B) {
			st := backlog(b, b.N)
			all, onAttempt := counter(b.N)
			d := dest
			d.Agent = "bench"
			cfg := &config.Config{Agents: []config.Agent{{Name: "bench", Token: "t"}}, Destinations: []config.Destination{d}}
			cfg.SetDefaults()
			srv, err := agent.NewServer(st, cfg, agent.ServerOptions{
				Logger: quiet, PollInterval: 5 * time.Millisecond, OnAttempt: onAttempt,
			})
			if err != nil {
				b.Fatal(err)
			}
			relaySrv := httptest.NewServer(srv.Handler())
			b.Cleanup(relaySrv.Close)
			b.Cleanup(srv.Close)
			opts := agent.ClientOptions{
				Server: relaySrv.URL, Insecure: true, Name: "bench", Token: "t",
				Concurrency: benchConcurrency, Logger: quiet,
			}
			if viaProxy {
				opts = throughProxy(b, opts, relaySrv.URL)
			}
			c, err := agent.NewClient(opts)
			if err != nil {
				b.Fatal(err)
			}
			measure(b, all, c.Run)
		})
	}
}

// backlog opens a store holding n queued deliveries to "sink". Accepts run
// in parallel so the store commits them in groups.
func backlog(b *testing.B, n int) *bolt.Store {
	b.Helper()
	st, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
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

// measure runs run until every delivery is recorded, and reports the rate.
func measure(b *testing.B, all <-chan struct{}, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- run(ctx) }()
	<-all
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}

// throughProxy points opts at a TLS front of relayURL via a CONNECT proxy.
func throughProxy(b *testing.B, opts agent.ClientOptions, relayURL string) agent.ClientOptions {
	u, _ := url.Parse(relayURL)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	front.StartTLS()
	b.Cleanup(front.Close)
	roots := x509.NewCertPool()
	roots.AddCert(front.Certificate())
	proxy := agenttest.NewProxy(b)
	opts.Server, opts.Insecure, opts.RootCAs = front.URL, false, roots
	opts.Proxy = http.ProxyURL(proxy.URL)
	return opts
}
