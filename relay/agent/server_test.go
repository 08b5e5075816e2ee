package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// These tests speak the protocol by hand against a Server on a real
// embedded store, to pin down what the relay does with each report.

const serverConfig = `
agents:
  - {name: office-1, token: tok-1-0123456789abcdef}
  - {name: office-2, token: tok-2-0123456789abcdef}
destinations:
  - {name: office, agent: office-1, url: "http://10.0.0.5/hook", retry: {max_attempts: 5, initial_interval: 1s, max_interval: 2s}}
  - {name: office-once, agent: office-1, url: "http://10.0.0.5/once", retry: {max_attempts: 1}}
  - {name: office-202, agent: office-1, url: "http://10.0.0.5/202", success_status: [202]}
  - {name: pair, agent: office-1, url: "http://10.0.0.5/pair", concurrency: 2}
  - {name: slow, agent: office-1, url: "http://10.0.0.5/slow", rate_limit: 0.001}
  - {name: other, agent: office-2, url: "http://10.0.0.6/hook"}
  - {name: fragile, agent: office-2, url: "http://10.0.0.6/fragile", circuit: {failures: 1, cooldown: 1h, first_cooldown: 1h}, retry: {initial_interval: 1h, max_interval: 2h}}
  - {name: direct, url: "http://127.0.0.1:1/direct"}
`

type testServer struct {
	*Server
	m    *deliver.Manager // the pipelines, not run: agents attempt
	st   *bolt.Store
	url  string
	logs *testlog.Buffer
	// attempts and results count the pipelines' OnAttempt and OnResult calls.
	attempts, results atomic.Int64
}

func newTestServer(t *testing.T, opts ServerOptions) *testServer {
	t.Helper()
	return newTestServerOn(t, opts, func(st *bolt.Store) deliver.Queue { return st })
}

// newTestServerOn is newTestServer with the store as pipes, which settle
// the reports, see it.
func newTestServerOn(t *testing.T, opts ServerOptions, pipes func(*bolt.Store) deliver.Queue) *testServer {
	t.Helper()
	cfg, err := config.Load([]byte(serverConfig), "agents.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := &testServer{st: st, logs: &testlog.Buffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(ts.logs, nil))
	if opts.PollInterval == 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	ts.m, err = deliver.NewManager(pipes(st), cfg.Destinations, deliver.Options{Logger: opts.Logger, Clock: opts.Clock,
		OnAttempt: func(string, deliver.Outcome, int, time.Duration) { ts.attempts.Add(1) },
		OnResult:  func(store.Delivery, store.Attempt, deliver.Outcome) { ts.results.Add(1) }})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	ts.Server, err = NewServer(st, ts.m, cfg, opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(ts.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(ts.Close) // before hs.Close: ends held polls
	ts.url = hs.URL
	return ts
}

func (ts *testServer) log() string { return ts.logs.String() }

// nowClock is a clock whose Now is the func's; its timers are real ones.
type nowClock func() time.Time

func (c nowClock) Now() time.Time { return c() }

func (nowClock) AfterFunc(d time.Duration, f func()) clock.Timer { return clock.Real.AfterFunc(d, f) }

// reload applies cfg as the relay does: the pipelines, then the server.
func (ts *testServer) reload(t *testing.T, cfg *config.Config) {
	t.Helper()
	if err := ts.m.Update(cfg.Destinations); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := ts.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

// circuit returns the state of dest's breaker; ok is false when dest is not
// an agent destination.
func (ts *testServer) circuit(dest string) (state.Destination, bool) {
	if pipe := ts.m.Pipeline(dest); pipe != nil {
		if st := pipe.State(); st.Agent != "" {
			return st, true
		}
	}
	return state.Destination{}, false
}

// queue accepts one event for dest and returns its id.
func (ts *testServer) queue(t *testing.T, dest string) string {
	t.Helper()
	ev := store.Event{WebhookID: "1001", ContentType: "application/json", Body: []byte(`{"mid":"x"}`), ReceivedAt: time.Now()}
	res, err := ts.st.Accept(context.Background(), ev, []string{dest}, store.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	return res.EventID
}

func (ts *testServer) delivery(t *testing.T, eventID string) store.DeliveryRecord {
	t.Helper()
	rec, err := ts.st.Event(context.Background(), eventID)
	if err != nil || len(rec.Deliveries) != 1 {
		t.Fatalf("Event(%s) = %+v, %v", eventID, rec, err)
	}
	return rec.Deliveries[0]
}

// call makes one protocol call as agent name and decodes a 200 answer.
func (ts *testServer) call(t *testing.T, name, path string, in, out any) int {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(b))
	req.Header.Set(HeaderAgent, name)
	req.Header.Set("Authorization", "Bearer tok-"+strings.TrimPrefix(name, "office-")+"-0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (ts *testServer) lease(t *testing.T, name string, n int, wait time.Duration) []assignment {
	t.Helper()
	var resp leaseResponse
	if code := ts.call(t, name, PathLease, leaseRequest{Max: n, WaitMS: millis(wait)}, &resp); code != http.StatusOK {
		t.Fatalf("lease: status %d", code)
	}
	return resp.Deliveries
}

// leaseOne waits for the next delivery of dest.
func (ts *testServer) leaseOne(t *testing.T, name, dest string) assignment {
	t.Helper()
	for range 50 {
		for _, j := range ts.lease(t, name, 1, 200*time.Millisecond) {
			if j.Destination == dest {
				return j
			}
			t.Fatalf("leased %s of %s, want one of %s", j.ID, j.Destination, dest)
		}
	}
	t.Fatalf("no delivery of %s handed out", dest)
	return assignment{}
}

func (ts *testServer) report(t *testing.T, name string, req reportRequest) reportResponse {
	t.Helper()
	var resp reportResponse
	if code := ts.call(t, name, PathReport, req, &resp); code != http.StatusOK {
		t.Fatalf("report: status %d", code)
	}
	return resp
}

// TestReportOutcomes reports one outcome of each kind and checks the
// acknowledgement and what the store recorded: the destination's policy, as
// for direct delivery.
func TestReportOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		dest    string
		out     report
		wantAck string
		check   func(t *testing.T, d store.DeliveryRecord)
	}{
		{"success", "office", report{Status: 200}, "success", func(t *testing.T, d store.DeliveryRecord) {
			if d.State != store.StateDelivered || len(d.AttemptLog) != 1 || d.AttemptLog[0].Status != 200 {
				t.Errorf("got %s %+v, want delivered with one attempt", d.State, d.AttemptLog)
			}
		}},
		{"retryable status", "office", report{Status: 500, Response: "oops"}, "retry", func(t *testing.T, d store.DeliveryRecord) {
			if d.State != store.StatePending || d.Attempts != 1 || !d.DueAt.After(time.Now()) || !strings.Contains(d.LastError, "500") {
				t.Errorf("got %s, %d attempts, due %v, error %q; want pending, retried later", d.State, d.Attempts, d.DueAt, d.LastError)
			}
			if d.AttemptLog[0].Response != "oops" {
				t.Errorf("response %q not recorded", d.AttemptLog[0].Response)
			}
		}},
		{"final status", "office", report{Status: 400}, "dead", func(t *testing.T, d store.DeliveryRecord) {
			if d.State != store.StateDead || !strings.Contains(d.LastError, "not retryable") {
				t.Errorf("got %s %q, want dead, not retryable", d.State, d.LastError)
			}
		}},
		{"retry-after wins", "office", report{Status: 503, RetryAfter: "120"}, "retry", func(t *testing.T, d store.DeliveryRecord) {
			if d.DueAt.Before(time.Now().Add(110 * time.Second)) {
				t.Errorf("due %v, want Retry-After's 120s from now", d.DueAt)
			}
		}},
		{"status outside success_status", "office-202", report{Status: 200}, "retry", nil},
		{"status in success_status", "office-202", report{Status: 202}, "success", nil},
		{"transport error", "office", report{Error: "dial tcp 10.0.0.5:80: connect: connection refused"}, "retry", func(t *testing.T, d store.DeliveryRecord) {
			if !strings.Contains(d.LastError, "connection refused") || d.LastStatus != 0 {
				t.Errorf("last error %q status %d, want the agent's error text and no status", d.LastError, d.LastStatus)
			}
		}},
		{"final transport error", "office", report{Error: "tls: failed to verify certificate", Final: true}, "dead", nil},
		{"max_attempts", "office-once", report{Status: 500}, "dead", func(t *testing.T, d store.DeliveryRecord) {
			if !strings.Contains(d.LastError, "max_attempts") {
				t.Errorf("last error %q, want the max_attempts reason", d.LastError)
			}
		}},
		{"release", "office", report{Release: true}, "released", func(t *testing.T, d store.DeliveryRecord) {
			if d.State != store.StatePending || d.Attempts != 0 {
				t.Errorf("got %s with %d attempts, want pending with none", d.State, d.Attempts)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testReportOutcome(t, newTestServer(t, ServerOptions{}), tc.dest, tc.out, tc.wantAck, tc.check)
		})
	}
}

// awaitSpy is the store as the pipelines see it, noting for each outcome
// whether its context says the caller waits for the answer.
type awaitSpy struct {
	*bolt.Store
	mu      sync.Mutex
	awaited []bool
}

func (s *awaitSpy) Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error)) {
	s.mu.Lock()
	s.awaited = append(s.awaited, store.Awaited(ctx))
	s.mu.Unlock()
	s.Store.Settle(ctx, d, o, done)
}

// A report is answered once its outcomes are durable, so the agent waits
// for the store's commit: its outcomes reach the store marked as awaited,
// which the embedded store commits without the long wait of outcomes
// nobody waits for.
func TestReportOutcomesAreAwaited(t *testing.T) {
	spy := &awaitSpy{}
	ts := newTestServerOn(t, ServerOptions{}, func(st *bolt.Store) deliver.Queue { spy.Store = st; return spy })
	testReportOutcome(t, ts, "office", report{Status: 200}, "success", nil)
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if len(spy.awaited) != 1 || !spy.awaited[0] {
		t.Errorf("outcomes settled with awaited %v, want [true]", spy.awaited)
	}
}

func testReportOutcome(t *testing.T, ts *testServer, dest string, out report, wantAck string, check func(*testing.T, store.DeliveryRecord)) {
	id := ts.queue(t, dest)
	j := ts.leaseOne(t, "office-1", dest)
	if j.URL == "" || j.Header.Get("Idempotency-Key") == "" || string(j.Body) != `{"mid":"x"}` || j.TimeoutMS <= 0 {
		t.Fatalf("job lacks what the attempt needs: %+v", j)
	}
	out.Ticket = j.Ticket
	resp := ts.report(t, "office-1", reportRequest{Reports: []report{out}})
	if len(resp.Acks) != 1 || resp.Acks[0] != wantAck {
		t.Fatalf("acks %q, want [%q]", resp.Acks, wantAck)
	}
	if check != nil {
		check(t, ts.delivery(t, id))
	}
	want := int64(1)
	if out.Release {
		want = 0
	}
	failures := ts.m.Pipeline(dest).State().ConsecutiveFailures
	// The same report again (its answer was lost) is settled already: it
	// is not counted, shown in the tail, logged or fed to the circuit
	// breaker a second time.
	if again := ts.report(t, "office-1", reportRequest{Reports: []report{out}}); again.Acks[0] != ackLeaseLost {
		t.Errorf("second report acked %q, want %q", again.Acks[0], ackLeaseLost)
	}
	if a, r := ts.attempts.Load(), ts.results.Load(); a != want || r != want {
		t.Errorf("after the report and its repeat: OnAttempt %d, OnResult %d; want %d each", a, r, want)
	}
	if f := ts.m.Pipeline(dest).State().ConsecutiveFailures; f != failures {
		t.Errorf("the repeat took the breaker's consecutive failures from %d to %d", failures, f)
	}
}

// TestTicketChecks refuses tickets that are unreadable or belong to another
// agent's destination, and leaves the delivery alone.
func TestTicketChecks(t *testing.T) {
	ts := newTestServer(t, ServerOptions{})
	id := ts.queue(t, "other")
	j := ts.leaseOne(t, "office-2", "other")
	resp := ts.report(t, "office-1", reportRequest{
		Reports: []report{{Ticket: j.Ticket, Status: 200}, {Ticket: "not-a-ticket", Status: 200}},
		Held:    []string{j.Ticket},
	})
	if resp.Acks[0] != ackInvalid || resp.Acks[1] != ackInvalid {
		t.Errorf("acks %q, want both invalid", resp.Acks)
	}
	if len(resp.Lost) != 1 {
		t.Errorf("lost %v: another agent's held ticket must not be extended", resp.Lost)
	}
	if d := ts.delivery(t, id); d.State != store.StatePending || d.Attempts != 0 {
		t.Errorf("delivery %s with %d attempts; a refused report must not change it", d.State, d.Attempts)
	}
	if ack := ts.report(t, "office-2", reportRequest{Reports: []report{{Ticket: j.Ticket, Status: 200}}}).Acks[0]; ack != "success" {
		t.Errorf("owner's report acked %q, want success", ack)
	}
}

// TestLeaseExpiresWithoutHeartbeat: a delivery whose agent stops reporting
// is handed out again once its lease expires, and the first holder's late
// outcome is refused.
func TestLeaseExpiresWithoutHeartbeat(t *testing.T) {
	ts := newTestServer(t, ServerOptions{Lease: 200 * time.Millisecond})
	id := ts.queue(t, "office")
	first := ts.leaseOne(t, "office-1", "office")
	second := ts.leaseOne(t, "office-1", "office")
	if first.ID != second.ID || first.Ticket == second.Ticket {
		t.Fatalf("re-offered %s (same ticket: %v), want %s with a new lease", second.ID, first.Ticket == second.Ticket, first.ID)
	}
	resp := ts.report(t, "office-1", reportRequest{Reports: []report{
		{Ticket: first.Ticket, Status: 200}, {Ticket: second.Ticket, Status: 200},
	}})
	if resp.Acks[0] != ackLeaseLost || resp.Acks[1] != "success" {
		t.Errorf("acks %q, want the expired lease refused and the live one recorded", resp.Acks)
	}
	if d := ts.delivery(t, id); d.State != store.StateDelivered || len(d.AttemptLog) != 1 {
		t.Errorf("delivery %s with %d attempts, want delivered once", d.State, len(d.AttemptLog))
	}
}

// TestHeartbeatKeepsLease: while the agent reports the ticket as held, the
// delivery is not handed to anyone else, however long the attempt runs.
func TestHeartbeatKeepsLease(t *testing.T) {
	ts := newTestServer(t, ServerOptions{Lease: 300 * time.Millisecond})
	ts.queue(t, "office")
	j := ts.leaseOne(t, "office-1", "office")
	for range 10 { // three lease periods
		if resp := ts.report(t, "office-1", reportRequest{Held: []string{j.Ticket}}); len(resp.Lost) != 0 {
			t.Fatalf("lease lost although extended at every heartbeat")
		}
		if again := ts.lease(t, "office-1", 1, 100*time.Millisecond); len(again) != 0 {
			t.Fatalf("re-offered while held: %s", again[0].ID)
		}
	}
}

// TestLeaseLimits: agents hold no more than holdFactor times a
// destination's concurrency and are told the concurrency; a finished
// attempt, announced by a poll or a report, makes room; a poll never takes
// more than the rate limit allows.
func TestLeaseLimits(t *testing.T) {
	ts := newTestServer(t, ServerOptions{})
	bound := holdFactor * 2
	for range bound + 2 {
		ts.queue(t, "pair")
	}
	got := ts.lease(t, "office-1", 100, time.Second)
	if len(got) != bound || got[0].Concurrency != 2 {
		t.Fatalf("first poll got %d deliveries (concurrency %d) of a destination with concurrency 2, want %d (2)", len(got), got[0].Concurrency, bound)
	}
	if more := ts.lease(t, "office-1", 100, 0); len(more) != 0 {
		t.Fatalf("got %d more while %d are held", len(more), bound)
	}
	var lr leaseResponse
	ts.call(t, "office-1", PathLease, leaseRequest{Max: 100, WaitMS: 1000, Finished: []string{got[0].Ticket}}, &lr)
	if len(lr.Deliveries) != 1 {
		t.Fatalf("got %d after one attempt finished, want 1", len(lr.Deliveries))
	}
	ts.report(t, "office-1", reportRequest{Reports: []report{{Ticket: got[1].Ticket, Status: 200}}})
	if more := ts.lease(t, "office-1", 100, time.Second); len(more) != 1 {
		t.Fatalf("got %d after one reported, want 1", len(more))
	}

	for range 3 {
		ts.queue(t, "slow")
	}
	var slow int
	for _, j := range ts.lease(t, "office-1", 10, time.Second) {
		if j.Destination == "slow" {
			slow++
		}
	}
	if slow != 1 {
		t.Errorf("got %d deliveries of a destination limited to one per 1000 s, want the burst of 1", slow)
	}
}

// TestMaxAgePassedWhileWaiting: a delivery that waited past max_age for an
// agent goes to the dead-letter queue when an agent finally polls, instead
// of reaching the receiver days late.
func TestMaxAgePassedWhileWaiting(t *testing.T) {
	later := func() time.Time { return time.Now().Add(config.DefaultMaxAge + time.Hour) }
	ts := newTestServer(t, ServerOptions{Clock: nowClock(later)})
	id := ts.queue(t, "office")
	if got := ts.lease(t, "office-1", 10, 0); len(got) != 0 {
		t.Fatalf("handed out %d deliveries older than max_age", len(got))
	}
	d := ts.delivery(t, id)
	if d.State != store.StateDead || !strings.Contains(d.LastError, "max_age") {
		t.Errorf("delivery %s, last error %q; want dead-lettered for max_age", d.State, d.LastError)
	}
}

// TestConnectedState follows an agent's presence on a fake clock: unknown
// until it calls, connected after, disconnected a lease period after its
// last call.
func TestConnectedState(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := newTestServer(t, ServerOptions{Lease: time.Minute, Clock: nowClock(clock)})

	if ts.Connected("office-1") {
		t.Error("connected before any call")
	}
	ts.report(t, "office-1", reportRequest{})
	if !ts.Connected("office-1") {
		t.Error("not connected after a call")
	}
	states := ts.States()
	if len(states) != 2 || states[0].Name != "office-1" || !states[0].Connected || len(states[0].Destinations) != 5 ||
		states[1].Name != "office-2" || states[1].Connected {
		t.Errorf("States() = %+v", states)
	}

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if ts.Connected("office-1") {
		t.Error("still connected a lease period after the last call")
	}
	if !strings.Contains(ts.log(), "agent: disconnected") {
		t.Error("the change to disconnected was not logged")
	}
}

// TestCloseEndsPolls: Close answers held polls at once and refuses new ones,
// so the HTTP server can shut down.
func TestCloseEndsPolls(t *testing.T) {
	ts := newTestServer(t, ServerOptions{PollWait: time.Hour})
	type answer struct {
		code int
		jobs []assignment
	}
	done := make(chan answer, 1)
	go func() {
		b, _ := json.Marshal(leaseRequest{Max: 1, WaitMS: millis(time.Hour)})
		req, _ := http.NewRequest(http.MethodPost, ts.url+PathLease, bytes.NewReader(b))
		req.Header.Set(HeaderAgent, "office-1")
		req.Header.Set("Authorization", "Bearer tok-1-0123456789abcdef")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{}
			return
		}
		defer resp.Body.Close()
		var lr leaseResponse
		json.NewDecoder(resp.Body).Decode(&lr)
		done <- answer{resp.StatusCode, lr.Deliveries}
	}()
	// Wait until the poll has arrived: the agent shows as connected.
	for !ts.Connected("office-1") {
		time.Sleep(time.Millisecond)
	}
	ts.Close()
	select {
	case a := <-done:
		// 200 with nothing when the poll was held, 503 if Close won the race.
		if (a.code != http.StatusOK && a.code != http.StatusServiceUnavailable) || len(a.jobs) != 0 {
			t.Errorf("poll ended by Close: status %d, %d deliveries", a.code, len(a.jobs))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("held poll not ended by Close")
	}
	var resp leaseResponse
	if code := ts.call(t, "office-1", PathLease, leaseRequest{Max: 1}, &resp); code != http.StatusServiceUnavailable {
		t.Errorf("poll after Close: status %d, want 503", code)
	}
}

// TestWakeEndsHeldPoll: with polling intervals of an hour, only a Wake can
// hand a delivery queued after the poll arrived to that poll; twice, so a
// poll after a wake-up is woken too.
func TestWakeEndsHeldPoll(t *testing.T) {
	ts := newTestServer(t, ServerOptions{PollWait: time.Hour, PollInterval: time.Hour})
	for round := range 2 {
		got := make(chan []assignment, 1)
		go func() {
			var resp leaseResponse
			ts.call(t, "office-1", PathLease, leaseRequest{Max: 1, WaitMS: millis(time.Hour)}, &resp)
			got <- resp.Deliveries
		}()
		// Wait until the poll holds the wake channel.
		for armed := false; !armed; {
			time.Sleep(time.Millisecond)
			ts.Server.mu.Lock()
			p := ts.agents["office-1"]
			armed = p != nil && p.armed
			ts.Server.mu.Unlock()
		}
		id := ts.queue(t, "office")
		ts.Wake("office")
		select {
		case jobs := <-got:
			if len(jobs) != 1 || jobs[0].Header.Get(deliver.HeaderEventID) != id {
				t.Fatalf("round %d: poll got %+v, want the delivery of %s", round, jobs, id)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: the held poll was not woken", round)
		}
	}
}

// TestBadRequests: malformed and oversized bodies are refused with a JSON
// error.
func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, ServerOptions{})
	tests := []struct {
		name string
		body string
		want int
	}{
		{"not JSON", "{", http.StatusBadRequest},
		{"too large", `{"held":["` + strings.Repeat("x", maxRequestBytes) + `"]}`, http.StatusRequestEntityTooLarge},
		{"too many items", `{"held":[` + strings.TrimSuffix(strings.Repeat(`"x",`, maxReportItems+1), ",") + `]}`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.url+PathReport, strings.NewReader(tc.body))
			req.Header.Set(HeaderAgent, "office-1")
			req.Header.Set("Authorization", "Bearer tok-1-0123456789abcdef")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorResponse
			if resp.StatusCode != tc.want || json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
				t.Errorf("status %d error %q, want %d with a message", resp.StatusCode, e.Error, tc.want)
			}
		})
	}
	resp, err := http.Get(ts.url + PathLease)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d, want 405", PathLease, resp.StatusCode)
	}
}

func TestNewServerRefusesBadConfig(t *testing.T) {
	for _, cfg := range []*config.Config{
		{Agents: []config.Agent{{Name: "a"}}},
		{Agents: []config.Agent{{Name: "a", Token: "t"}, {Name: "a", Token: "u"}}},
		{Destinations: []config.Destination{{Name: "d", Agent: "nobody", URL: "http://x/"}}},
	} {
		m, err := deliver.NewManager(nil, cfg.Destinations, deliver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewServer(nil, m, cfg, ServerOptions{}); err == nil {
			t.Errorf("NewServer(%+v) accepted", cfg)
		}
	}
}

func ExampleNewClient() {
	_, err := NewClient(ClientOptions{Server: "http://relay.example.com", Name: "office-1", Token: "t"})
	fmt.Println(err)
	// Output: agent: bad server URL: http://relay.example.com is plain http; use https, or -insecure for local testing
}
