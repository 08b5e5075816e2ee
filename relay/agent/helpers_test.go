package agent_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/agent/agenttest"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

const (
	agentName  = "office-1"
	agentToken = "agent-token-8c1f"
	// testLease is the relay's delivery.lease, short so that a dead agent's
	// deliveries come back fast.
	testLease = time.Second
	// waitTimeout is generous: tests wait for states, never for durations.
	waitTimeout = 20 * time.Second
)

func newLog(t testing.TB) (*slog.Logger, *testlog.Buffer) {
	t.Helper()
	lb := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sink is the private receiver. While holding, it keeps each request open
// until release or until the caller goes away. It answers 200, or what
// answer sets.
type sink struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	holding  bool
	held     int
	release  chan struct{}
	status   int                    // answered instead of 200 when not 0
	location string                 // sent as Location with status
	observe  func() destinationView // called for each request, if set
}

type received struct {
	header http.Header
	body   []byte
	done   bool // answered 200, not cut off while held
	status int  // the status answered
	// seen is what observe returned when the request arrived.
	seen destinationView
}

func newSink(t testing.TB) *sink {
	t.Helper()
	return startSink(t, (*httptest.Server).Start)
}

// newTLSSink is newSink over HTTPS, with a certificate of httptest's own
// CA (the sink's Certificate), which no system trusts.
func newTLSSink(t testing.TB) *sink {
	t.Helper()
	return startSink(t, (*httptest.Server).StartTLS)
}

func startSink(t testing.TB, start func(*httptest.Server)) *sink {
	t.Helper()
	s := &sink{release: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		observe := s.observe
		s.mu.Unlock()
		var seen destinationView
		if observe != nil {
			seen = observe() // without the lock: it may take a while
		}
		s.mu.Lock()
		i := len(s.got)
		status, location := cmp.Or(s.status, http.StatusOK), s.location
		s.got = append(s.got, received{header: r.Header.Clone(), body: body, status: status, seen: seen})
		hold, release := s.holding, s.release
		if hold {
			s.held++
		}
		s.mu.Unlock()
		if hold {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if location != "" {
			w.Header().Set("Location", location)
		}
		w.WriteHeader(status)
		s.mu.Lock()
		s.got[i].done = status == http.StatusOK
		s.mu.Unlock()
	}))
	start(s.Server)
	t.Cleanup(s.Close)
	return s
}

// hold makes the sink keep requests open until unhold.
func (s *sink) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = true
}

// stopHolding answers new requests at once and leaves the held ones held
// until their callers go away.
func (s *sink) stopHolding() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
}

// unhold answers the held requests and new ones at once.
func (s *sink) unhold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	close(s.release)
	s.release = make(chan struct{})
}

// answer makes the sink answer status (0: 200), with a Location header
// when location is not "".
func (s *sink) answer(status int, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.location = status, location
}

// watch has the sink call observe for each request and keep its result.
func (s *sink) watch(observe func() destinationView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe = observe
}

func (s *sink) heldCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *sink) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// answered waits until n requests have been answered 200 and returns all.
func (s *sink) answered(t testing.TB, n int) []received {
	t.Helper()
	var got []received
	waitFor(t, fmt.Sprintf("%d answered requests at the sink", n), func() bool {
		got = s.requests()
		done := 0
		for _, r := range got {
			if r.done {
				done++
			}
		}
		return done >= n
	})
	return got
}

// env is a relay with one agent destination ("office", served by
// agentName, URL the sink), a TLS terminator in front of its ingest
// listener (the agent must speak HTTPS to pass a CONNECT proxy), and a
// CONNECT proxy.
type env struct {
	base    string // the relay's ingest listener, plain HTTP
	admin   string // the relay's admin listener
	front   *httptest.Server
	roots   *x509.CertPool
	proxy   *agenttest.Proxy
	sink    *sink
	log     *slog.Logger
	logs    *testlog.Buffer
	dataDir string
	stop    func()
}

// destination extra keys, indented for the destination's mapping.
const officeDest = `
    retry: {initial_interval: 10ms, max_interval: 50ms}
`

func newEnv(t *testing.T, destExtra string) *env {
	t.Helper()
	return newEnvWith(t, newSink(t), destExtra)
}

// newEnvWith is newEnv with the given sink as office's receiver.
func newEnvWith(t *testing.T, sk *sink, destExtra string) *env {
	t.Helper()
	log, logs := newLog(t)
	e := &env{sink: sk, log: log, logs: logs, dataDir: t.TempDir()}
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n" +
		"store: {embedded: {path: " + e.dataDir + "}}\n" +
		"delivery: {poll_interval: 50ms, lease: " + testLease.String() + "}\n" +
		"agents: [{name: " + agentName + ", token: " + agentToken + "}]\n" +
		"routes: [{webhook_id: \"1001\", to: [office]}]\n" +
		"destinations:\n  - name: office\n    agent: " + agentName + "\n    url: " + e.sink.URL + "/hook\n" + destExtra
	cfg, err := config.Load([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r := relaytest.Start(t, cfg, relay.Options{Logger: log})
	e.stop = func() {
		if err := r.Stop(); err != nil {
			t.Errorf("relay.Run: %v", err)
		}
	}
	e.base, e.admin = r.Ingest, r.Admin

	u, _ := url.Parse(e.base)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	e.front = httptest.NewUnstartedServer(rp)
	e.front.Config.ErrorLog = rp.ErrorLog // handshakes cut by the proxy tests
	e.front.StartTLS()
	t.Cleanup(e.front.Close)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(e.front.Certificate())
	e.proxy = agenttest.NewProxy(t)
	return e
}

// clientOptions are test-sized options for an agent reaching the relay
// through the TLS front and the proxy.
func (e *env) clientOptions(proxy *agenttest.Proxy) agent.ClientOptions {
	return agent.ClientOptions{
		Server:       e.front.URL,
		Name:         agentName,
		Token:        agentToken,
		RootCAs:      e.roots,
		Proxy:        http.ProxyURL(proxy.URL),
		Concurrency:  4,
		PollWait:     2 * time.Second,
		DeadAfter:    2 * time.Second,
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
		DrainTimeout: 2 * time.Second,
		Logger:       e.log,
		Version:      "test",
	}
}

// startAgent runs an agent in-process; stop (also run at cleanup) cancels
// it and waits for Run to return.
func startAgent(t *testing.T, o agent.ClientOptions) (c *agent.Client, stop func()) {
	t.Helper()
	c, err := agent.NewClient(o)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("agent Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return c, stop
}

// post sends one callback with the given mid and returns its event id.
func (e *env) post(t testing.TB, mid string) string {
	t.Helper()
	body := `{"mid":"` + mid + `","status":"ANSWER"}`
	resp, err := http.Post(e.base+"/hooks/1001", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var a struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusAccepted || a.Status != "accepted" {
		t.Fatalf("POST: %d %+v %v", resp.StatusCode, a, err)
	}
	return a.EventID
}

// destinationView is the part of GET /api/destinations these tests read.
type destinationView struct {
	Name                string `json:"name"`
	Circuit             string `json:"circuit"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	LastError           string `json:"last_error"`
	Queued              int    `json:"queued"`
}

// office returns the admin API's view of the office destination.
func (e *env) office(t testing.TB) destinationView {
	t.Helper()
	resp, err := http.Get(e.admin + "/api/destinations")
	if err != nil {
		t.Errorf("GET /api/destinations: %v", err)
		return destinationView{}
	}
	defer resp.Body.Close()
	var all []destinationView
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/destinations: %d, %v", resp.StatusCode, err)
	}
	for _, d := range all {
		if d.Name == "office" {
			return d
		}
	}
	t.Errorf("GET /api/destinations: no office in %+v", all)
	return destinationView{}
}

// metric returns the line of GET /metrics that starts with prefix, or "".
func (e *env) metric(t testing.TB, prefix string) string {
	t.Helper()
	resp, err := http.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// records stops the relay and reads the office deliveries of the given
// events from the store it leaves behind, in the same order.
func (e *env) records(t testing.TB, eventIDs ...string) []store.DeliveryRecord {
	t.Helper()
	e.stop()
	st, err := bolt.Open(e.dataDir, bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer st.Close()
	var out []store.DeliveryRecord
	for _, id := range eventIDs {
		rec, err := st.Event(context.Background(), id)
		if err != nil || len(rec.Deliveries) != 1 {
			t.Fatalf("Event(%s) = %+v, %v", id, rec, err)
		}
		out = append(out, rec.Deliveries[0])
	}
	return out
}

// inspect stops the relay and reads an event's delivery to office from the
// store it leaves behind.
func (e *env) inspect(t testing.TB, eventID string) store.DeliveryRecord {
	t.Helper()
	return e.records(t, eventID)[0]
}
