package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// TestOneSettlePath runs the same outcome table through the relay's own
// workers (a dispatcher of deliver.Manager, attempting over HTTP) and
// through an agent (a real Client polling a real Server over HTTP, the
// attempt made by the agent), against the same receiver, and checks that
// both record the same thing: the delivery's state, attempts, last status
// and error and the wait until its retry, what OnAttempt and OnResult saw,
// and the circuit's transitions and final state. Both go through
// deliver.Pipeline's one settle path; each row also states what that path
// must record, so a break in it fails both.
func TestOneSettlePath(t *testing.T) {
	var flaky sync.Mutex
	flakyCalls := 0
	quit := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/503":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case "/429":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/400":
			http.Error(w, "bad", http.StatusBadRequest)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-quit:
			}
		case "/307":
			w.Header().Set("Location", "/ok")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/flaky": // fails twice, then answers
			flaky.Lock()
			flakyCalls++
			n := flakyCalls
			flaky.Unlock()
			if n <= 2 {
				http.Error(w, "flaky", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(recv.Close)
	t.Cleanup(func() { close(quit) }) // before recv.Close, which waits for /slow
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() + "/hook"
	closed.Close()

	// want is what one delivery must end with; wait is the time from the
	// end of its attempt to its retry.
	type want struct {
		state    store.DeliveryState
		status   int
		errHas   string
		wait     time.Duration
		response string
	}
	dest := func(name, url string, edit func(*config.Destination)) config.Destination {
		d := config.Destination{
			Name: name, URL: url, Concurrency: 1, Timeout: config.Duration(2 * time.Second),
			Retry:   config.Retry{MaxAttempts: 5, Schedule: []config.Duration{config.Duration(time.Minute)}, MaxAge: config.Duration(time.Hour)},
			Circuit: config.Circuit{Failures: 100, FirstCooldown: config.Duration(time.Hour), Cooldown: config.Duration(time.Hour)},
		}
		if edit != nil {
			edit(&d)
		}
		return d
	}
	rows := []struct {
		d        config.Destination
		steps    []want   // one event each, queued once the one before is settled
		circuits []string // OnCircuit's transitions
		final    string   // the circuit's state at the end
	}{
		{d: dest("ok", recv.URL+"/ok", nil), steps: []want{{state: store.StateDelivered, status: 200}}, final: "closed"},
		{d: dest("retryable", recv.URL+"/503", nil),
			steps: []want{{state: store.StatePending, status: 503, errHas: "status 503", wait: time.Minute, response: "down\n"}}, final: "closed"},
		{d: dest("retry-after", recv.URL+"/429", nil),
			steps: []want{{state: store.StatePending, status: 429, errHas: "status 429", wait: 2 * time.Minute}}, final: "closed"},
		{d: dest("final-4xx", recv.URL+"/400", nil),
			steps: []want{{state: store.StateDead, status: 400, errHas: "not retryable", response: "bad\n"}}, final: "closed"},
		{d: dest("transport", refused, nil),
			steps: []want{{state: store.StatePending, errHas: "connection refused", wait: time.Minute}}, final: "closed"},
		{d: dest("timeout", recv.URL+"/slow", func(d *config.Destination) { d.Timeout = config.Duration(300 * time.Millisecond) }),
			steps: []want{{state: store.StatePending, errHas: "timed out after 300ms", wait: time.Minute}}, final: "closed"},
		{d: dest("last-attempt", recv.URL+"/503", func(d *config.Destination) { d.Retry.MaxAttempts = 1 }),
			steps: []want{{state: store.StateDead, status: 503, errHas: "gave up after max_attempts (1)", response: "down\n"}}, final: "closed"},
		// One failure the breaker counted would open it.
		{d: dest("transform", recv.URL+"/ok", func(d *config.Destination) {
			d.Transform = &config.Transform{Body: `{n: (.x | tonumber)}`}
			d.Circuit.Failures = 1
		}), steps: []want{{state: store.StateDead, errHas: "transform: body: jq: tonumber cannot be applied to \"a\": invalid number; not retried: the transform fails the same way every time"}}, final: "closed"},
		{d: dest("no-body", recv.URL+"/ok", func(d *config.Destination) { d.Circuit.Failures = 1 }),
			steps: []want{{state: store.StateDead, errHas: "event body missing (event <evt>); not retryable"}}, final: "closed"},
		{d: dest("redirect", recv.URL+"/307", nil),
			steps: []want{{state: store.StatePending, status: 307, errHas: "redirect not followed: status 307 to " + recv.URL + "/ok", wait: time.Minute}}, final: "closed"},
		{d: dest("circuit", recv.URL+"/flaky", func(d *config.Destination) {
			d.Circuit = config.Circuit{Failures: 2, FirstCooldown: config.Duration(300 * time.Millisecond), Cooldown: config.Duration(time.Hour)}
		}), steps: []want{
			{state: store.StatePending, status: 503, errHas: "status 503", wait: time.Minute, response: "flaky\n"},
			{state: store.StatePending, status: 503, errHas: "status 503", wait: time.Minute, response: "flaky\n"}, // opens it
			{state: store.StateDelivered, status: 200},                                                             // the probe, after the cooldown: closes it
		}, circuits: []string{"open", "half-open", "closed"}, final: "closed"},
	}
	var dests []config.Destination
	for _, r := range rows {
		dests = append(dests, r.d)
	}

	paths := map[string]func(t *testing.T, dests []config.Destination, opts deliver.Options) (*bolt.Store, *deliver.Manager){
		"dispatcher": settleViaDispatcher,
		"agent":      settleViaAgent,
	}
	got := map[string]map[string][]string{} // path → destination → what was seen
	for _, path := range []string{"dispatcher", "agent"} {
		t.Run(path, func(t *testing.T) {
			flaky.Lock()
			flakyCalls = 0
			flaky.Unlock()
			rec := newSettleRecorder()
			st, m := paths[path](t, dests, deliver.Options{
				Logger: slog.New(slog.DiscardHandler), PollInterval: 5 * time.Millisecond,
				OnAttempt: rec.attempt, OnResult: rec.result, OnCircuit: rec.circuit,
			})
			seen := map[string][]string{}
			var seenMu sync.Mutex
			var wg sync.WaitGroup
			for _, r := range rows {
				wg.Go(func() {
					var lines []string
					defer func() { seenMu.Lock(); seen[r.d.Name] = lines; seenMu.Unlock() }()
					for i, w := range r.steps {
						id := acceptOne(t, st, r.d.Name)
						d := waitAttempted(t, st, id)
						line := fmt.Sprintf("step %d: %s", i+1, describeSettled(d))
						lines = append(lines, line)
						a := d.AttemptLog[0]
						wait := d.DueAt.Sub(a.At.Add(a.Duration)).Round(time.Second)
						switch {
						case d.State != w.state || d.Attempts != 1 || d.LastStatus != w.status || a.Response != w.response:
							t.Errorf("%s step %d: %s; want %s after one attempt, status %d, response %q", r.d.Name, i+1, line, w.state, w.status, w.response)
						case w.errHas == "" && d.LastError != "", !strings.Contains(normalize(d.LastError), w.errHas):
							t.Errorf("%s step %d: error %q, want it to hold %q", r.d.Name, i+1, d.LastError, w.errHas)
						case w.state == store.StatePending && wait != w.wait:
							t.Errorf("%s step %d: retry %v after the attempt, want %v", r.d.Name, i+1, wait, w.wait)
						}
					}
				})
			}
			wg.Wait()
			states := map[string]string{}
			for _, s := range m.States() {
				states[s.Name] = fmt.Sprintf("circuit %s, %d consecutive failures, last error %q", s.Circuit, s.ConsecutiveFailures, normalize(s.LastError))
			}
			for _, r := range rows {
				name := r.d.Name
				if cs := rec.circuits(name); !slices.Equal(cs, r.circuits) {
					t.Errorf("%s: circuit went %q, want %q", name, cs, r.circuits)
				}
				if !strings.HasPrefix(states[name], "circuit "+r.final+",") {
					t.Errorf("%s: %s, want the circuit %s", name, states[name], r.final)
				}
				if n := len(rec.results(name)); n != len(r.steps) || len(rec.attempts(name)) != n {
					t.Errorf("%s: OnResult saw %d results and OnAttempt %d, want %d each", name, n, len(rec.attempts(name)), len(r.steps))
				}
				seen[name] = append(seen[name], rec.attempts(name)...)
				seen[name] = append(seen[name], rec.results(name)...)
				seen[name] = append(seen[name], rec.circuits(name)...)
				seen[name] = append(seen[name], states[name])
			}
			got[path] = seen
		})
	}
	if len(got) != 2 {
		return
	}
	for _, r := range rows {
		if d, a := got["dispatcher"][r.d.Name], got["agent"][r.d.Name]; !slices.Equal(d, a) {
			t.Errorf("%s: the paths differ\ndispatcher:\n  %s\nagent:\n  %s", r.d.Name, strings.Join(d, "\n  "), strings.Join(a, "\n  "))
		}
	}
}

// settleViaDispatcher delivers dests with the relay's own workers.
func settleViaDispatcher(t *testing.T, dests []config.Destination, opts deliver.Options) (*bolt.Store, *deliver.Manager) {
	st := openBolt(t)
	m, err := deliver.NewManager(bodiless{st}, dests, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, m
}

// settleViaAgent delivers dests through an agent: a Server over HTTP, and a
// Client that attempts.
func settleViaAgent(t *testing.T, dests []config.Destination, opts deliver.Options) (*bolt.Store, *deliver.Manager) {
	st := openBolt(t)
	cfg := &config.Config{Agents: []config.Agent{{Name: "a1", Token: "token-0123456789abcdef"}}}
	for _, d := range dests {
		d.Agent = "a1"
		cfg.Destinations = append(cfg.Destinations, d)
	}
	m, err := deliver.NewManager(bodiless{st}, cfg.Destinations, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agent.NewServer(bodiless{st}, m, cfg, agent.ServerOptions{Logger: opts.Logger, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	c, err := agent.NewClient(agent.ClientOptions{Server: hs.URL, Insecure: true, Name: "a1", Token: "token-0123456789abcdef",
		Concurrency: 16, PollWait: time.Second, Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, m
}

func openBolt(t *testing.T) *bolt.Store {
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// bodiless is the store with the event bodies of "no-body" deliveries
// gone, as if the store had lost them.
type bodiless struct{ *bolt.Store }

func (b bodiless) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	ds, err := b.Store.Lease(ctx, dest, n, lease)
	if dest == "no-body" {
		for i := range ds {
			ds[i].Event = nil
		}
	}
	return ds, err
}

func acceptOne(t *testing.T, st *bolt.Store, dest string) string {
	ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: []byte(`{"x":"a"}`), ReceivedAt: time.Now()}
	res, err := st.Accept(context.Background(), ev, []string{dest}, store.Dedupe{})
	if err != nil {
		t.Error(err)
	}
	return res.EventID
}

// waitAttempted waits for the event's one delivery to have an attempt
// recorded and returns it.
func waitAttempted(t *testing.T, st *bolt.Store, eventID string) store.DeliveryRecord {
	var d store.DeliveryRecord
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		rec, err := st.Event(context.Background(), eventID)
		if err == nil && len(rec.Deliveries) == 1 && len(rec.Deliveries[0].AttemptLog) > 0 {
			return rec.Deliveries[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("event %s: no attempt recorded", eventID)
	d.AttemptLog = []store.Attempt{{}}
	return d
}

var eventIDs = regexp.MustCompile(`evt_[0-9A-Za-z]+`)

// normalize drops what differs between two runs of the same table: event
// ids.
func normalize(s string) string { return eventIDs.ReplaceAllString(s, "<evt>") }

func describeSettled(d store.DeliveryRecord) string {
	a := d.AttemptLog[0]
	return fmt.Sprintf("%s after %d attempts, status %d, error %q, response %q, retry %v after the attempt",
		d.State, d.Attempts, d.LastStatus, normalize(d.LastError), a.Response, d.DueAt.Sub(a.At.Add(a.Duration)).Round(time.Second))
}

// settleRecorder keeps what the pipeline's hooks saw, by destination.
type settleRecorder struct {
	mu                  sync.Mutex
	atts, res, circuitT map[string][]string
}

func newSettleRecorder() *settleRecorder {
	return &settleRecorder{atts: map[string][]string{}, res: map[string][]string{}, circuitT: map[string][]string{}}
}

func (r *settleRecorder) attempt(dest string, o deliver.Outcome, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.atts[dest] = append(r.atts[dest], fmt.Sprintf("OnAttempt %s %d", o, status))
}

func (r *settleRecorder) result(d store.Delivery, a store.Attempt, o deliver.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res[d.Destination] = append(r.res[d.Destination], fmt.Sprintf("OnResult %s attempt %d status %d error %q", o, a.N, a.Status, normalize(a.Error)))
}

func (r *settleRecorder) circuit(dest, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.circuitT[dest] = append(r.circuitT[dest], state)
}

func (r *settleRecorder) get(m map[string][]string, dest string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(m[dest])
}

func (r *settleRecorder) attempts(dest string) []string { return r.get(r.atts, dest) }
func (r *settleRecorder) results(dest string) []string  { return r.get(r.res, dest) }
func (r *settleRecorder) circuits(dest string) []string { return r.get(r.circuitT, dest) }
