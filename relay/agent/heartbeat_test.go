package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// TestHeartbeatFollowsShorterLease: an agent that waits out the minute-long
// heartbeat of a relay with a long lease, when the relay comes back with a
// short one (a restart with a shorter delivery.lease), must heartbeat the
// delivery it is then given at the new cadence at once, not after the old
// interval, or the lease lapses under a live attempt and the delivery goes
// out twice. Three heartbeats naming the ticket are the signal; the sink
// holds the attempt until then.
func TestHeartbeatFollowsShorterLease(t *testing.T) {
	const token = "tok-hb-0123456789abcdef"
	var requests atomic.Int64
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(sink.Close)
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before sink.Close, when the test fails early
	cfg, err := config.Load([]byte("agents: [{name: office-1, token: "+token+"}]\n"+
		"destinations: [{name: office, agent: office-1, url: \""+sink.URL+"/hook\"}]\n"), "hb.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &testlog.Buffer{}
	newRelay := func(lease time.Duration) *Server {
		log := slog.New(slog.NewTextHandler(logs, nil))
		m, err := deliver.NewManager(st, cfg.Destinations, deliver.Options{Logger: log})
		if err != nil {
			t.Fatalf("NewManager: %v", err)
		}
		s, err := NewServer(st, m, cfg, ServerOptions{Lease: lease, PollInterval: 10 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		t.Cleanup(s.Close)
		return s
	}
	long, short := newRelay(3*time.Minute), newRelay(time.Second)

	// The relay's address stays; what answers behind it changes. Reports
	// to the short-lease relay that name a held ticket are counted.
	var current atomic.Pointer[http.Handler]
	var heldBeats atomic.Int64
	longH, shortH := long.Handler(), short.Handler()
	current.Store(&longH)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := current.Load()
		if r.URL.Path == PathReport && p == &shortH {
			body, _ := io.ReadAll(r.Body)
			var rep reportRequest
			if json.Unmarshal(body, &rep) == nil && len(rep.Held) > 0 {
				heldBeats.Add(1)
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		(*p).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	c, err := NewClient(ClientOptions{Server: front.URL, Name: "office-1", Token: token, Insecure: true, Concurrency: 1,
		PollWait: time.Second, DeadAfter: 5 * time.Second, MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, DrainTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() { cancel(); run.Wait() })
	t.Cleanup(stop)

	waitUntil(t, "the agent to take the long relay's heartbeat", func() bool {
		return time.Duration(c.heartbeat.Load()) == time.Minute
	})
	current.Store(&shortH)
	long.Close() // ends the polls it holds
	res, err := st.Accept(context.Background(), store.Event{WebhookID: "1001", ContentType: "application/json",
		Body: []byte(`{"mid":"hb"}`), ReceivedAt: time.Now()}, []string{"office"}, store.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	short.Wake("office")
	waitUntil(t, "three heartbeats naming the held delivery", func() bool { return heldBeats.Load() >= 3 })
	unblock()
	waitUntil(t, "the delivery to be recorded", func() bool {
		rec, err := st.Event(context.Background(), res.EventID)
		return err == nil && len(rec.Deliveries) == 1 && rec.Deliveries[0].State == store.StateDelivered
	})
	stop()
	if n := requests.Load(); n != 1 {
		t.Errorf("the sink saw %d requests, want 1: the lease lapsed under a live attempt", n)
	}
	if strings.Contains(logs.String(), "lease lost") {
		t.Errorf("the agent lost its lease:\n%s", logs)
	}
}

// waitUntil polls cond until it holds, for 20 s at most.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
