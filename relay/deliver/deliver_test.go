package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay/store"
)

// sink is an httptest receiver that records every request it gets.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	path   string
	header http.Header
	body   []byte
}

// newSink answers request n (1-based) with handle.
func newSink(tb testing.TB, handle func(n int, w http.ResponseWriter, r *http.Request)) *sink {
	tb.Helper()
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{path: r.URL.Path, header: r.Header.Clone(), body: body})
		n := len(s.reqs)
		s.mu.Unlock()
		handle(n, w, r)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func TestDeliverSuccessSendsBodyAndHeaders(t *testing.T) {
	// A provider's body as sent: trailing comma, a number too long for float64.
	jsonBody := []byte(`{"webhook_id":"1001","mid":"77","duration":123456789012345678901234567890,}`)
	tests := []struct {
		name        string
		ev          store.Event
		secret      string
		wantType    string
		wantIdemKey func(eventID string) string
	}{
		{
			name:        "json, deduped, signed",
			ev:          store.Event{WebhookID: "1001", DedupeKey: "1001:77", ContentType: "application/json", Body: jsonBody},
			secret:      vectorSecret,
			wantType:    "application/json",
			wantIdemKey: func(string) string { return "1001:77" },
		},
		{
			name:        "dedupe value unfit for a header is encoded, not refused",
			ev:          store.Event{WebhookID: "1001", DedupeKey: "77\r\nX-Evil: 1", ContentType: "application/json", Body: jsonBody},
			wantType:    "application/json",
			wantIdemKey: func(string) string { return "77%0D%0AX-Evil:%201" },
		},
		{
			name:        "binary, no dedupe key, no content type, unsigned",
			ev:          store.Event{WebhookID: "2002", Body: []byte("\x00\xffraw\r\n")},
			wantType:    "application/octet-stream",
			wantIdemKey: func(id string) string { return id },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			big := bytes.Repeat([]byte("ok"), 50<<10) // 100 KiB answer
			sk := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.Write(big) })
			d := dest("crm", sk.URL+"/calls?token=abc")
			d.Headers = map[string]string{"X-Api-Key": "k-123"}
			d.SigningSecret = tt.secret
			st := newTestStore(t)
			evID := accept(t, st, tt.ev, "crm")
			startManager(t, st, []config.Destination{d}, testOptions())

			got := waitState(t, st, evID, "crm", store.StateDelivered)
			reqs := sk.requests()
			if len(reqs) != 1 || len(got.AttemptLog) != 1 {
				t.Fatalf("got %d requests, %d attempts; want 1, 1", len(reqs), len(got.AttemptLog))
			}
			r := reqs[0]
			if !bytes.Equal(r.body, tt.ev.Body) {
				t.Errorf("body = %q, want %q", r.body, tt.ev.Body)
			}
			want := map[string]string{
				"Content-Type":       tt.wantType,
				"X-Api-Key":          "k-123",
				"Idempotency-Key":    tt.wantIdemKey(evID),
				"X-Relay-Event-Id":   evID,
				"X-Relay-Webhook-Id": tt.ev.WebhookID,
				"X-Relay-Attempt":    "1",
				"User-Agent":         "relay/test",
			}
			for k, v := range want {
				if g := r.header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			checkSignature(t, r, tt.secret, got.ID)
			a := got.AttemptLog[0]
			if a.N != 1 || a.Status != 200 || a.Error != "" || a.At.IsZero() || a.Duration <= 0 {
				t.Errorf("attempt = %+v", a)
			}
			if len(a.Response) != responseKeep || !strings.HasPrefix(string(big), a.Response) {
				t.Errorf("recorded response is %d bytes, want the first %d", len(a.Response), responseKeep)
			}
		})
	}
}

// checkSignature verifies the Standard Webhooks headers of one request with
// the test's own verifier (verifyWebhook), not the package's Signer.
func checkSignature(tb testing.TB, r seen, secret, deliveryID string) {
	tb.Helper()
	if secret == "" {
		for _, h := range []string{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature} {
			if v := r.header.Get(h); v != "" {
				tb.Errorf("unsigned destination got %s: %q", h, v)
			}
		}
		return
	}
	if id := r.header.Get(HeaderWebhookID); id != deliveryID {
		tb.Errorf("webhook-id = %q, want the delivery id %q", id, deliveryID)
	}
	if err := verifyWebhook(secret, r.header, r.body, time.Now()); err != nil {
		tb.Errorf("signature does not verify: %v", err)
	}
}

func TestDeliverRetriesUntilSuccess(t *testing.T) {
	sk := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	d := dest("crm", sk.URL)
	d.SigningSecret = "raw-secret"
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte(`{"a":1}`)}, "crm")
	startManager(t, st, []config.Destination{d}, testOptions())

	got := waitState(t, st, evID, "crm", store.StateDelivered)
	if got.Attempts != 3 || len(got.AttemptLog) != 3 {
		t.Fatalf("attempts = %d (log %d), want 3", got.Attempts, len(got.AttemptLog))
	}
	for i, a := range got.AttemptLog {
		wantStatus := 503
		if i == 2 {
			wantStatus = 202
		}
		if a.N != i+1 || a.Status != wantStatus {
			t.Errorf("attempt %d = %+v, want N %d status %d", i, a, i+1, wantStatus)
		}
		if i < 2 && (!strings.Contains(a.Error, "503") || a.Response != "busy\n") {
			t.Errorf("failed attempt %d: error %q, response %q", i, a.Error, a.Response)
		}
	}
	for i, r := range sk.requests() {
		if g := r.header.Get(HeaderAttempt); g != strconv.Itoa(i+1) {
			t.Errorf("request %d: X-Relay-Attempt = %q", i, g)
		}
		// The webhook-id stays the same across retries, so receivers dedupe.
		checkSignature(t, r, "raw-secret", got.ID)
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	sk := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	startManager(t, st, []config.Destination{dest("crm", sk.URL)}, testOptions())

	var got store.DeliveryRecord
	waitFor(t, "the first attempt to be recorded", func() bool {
		got = deliveryOf(t, st, evID, "crm")
		return got.Attempts == 1
	})
	a := got.AttemptLog[0]
	if got.State != store.StatePending || a.Status != 429 || got.LastStatus != 429 {
		t.Fatalf("delivery = %+v", got.Delivery)
	}
	// Due 120s after the attempt ended, not after the 10-20ms backoff.
	if wait := got.DueAt.Sub(a.At.Add(a.Duration)); wait < 119*time.Second || wait > 121*time.Second {
		t.Fatalf("due %v after the attempt, want 120s (Retry-After)", wait)
	}
	if n := len(sk.requests()); n != 1 {
		t.Fatalf("sink got %d requests, want 1", n)
	}
}

func TestDeliverDeadLetters(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name       string
		handle     func(int, http.ResponseWriter, *http.Request)
		url        string // instead of the sink's
		attempts   int    // expected
		lastStatus int
		errHas     []string
	}{
		{"400 is final", status(400), "", 1, 400, []string{"status 400", "not retryable"}},
		{"410 is final", status(410), "", 1, 410, []string{"status 410", "not retryable"}},
		{"500 until max_attempts", status(500), "", 3, 500, []string{"status 500", "max_attempts (3)"}},
		{"connection refused until max_attempts", nil, closedURL, 3, 0, []string{"connection refused", "max_attempts (3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			var sk *sink
			if tt.handle != nil {
				sk = newSink(t, tt.handle)
				u = sk.URL
			}
			d := dest("crm", u)
			d.Retry.MaxAttempts = 3
			st := newTestStore(t)
			evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
			startManager(t, st, []config.Destination{d}, testOptions())

			got := waitState(t, st, evID, "crm", store.StateDead)
			if got.Attempts != tt.attempts || len(got.AttemptLog) != tt.attempts || got.LastStatus != tt.lastStatus {
				t.Fatalf("attempts %d (log %d), last status %d; want %d, %d", got.Attempts, len(got.AttemptLog), got.LastStatus, tt.attempts, tt.lastStatus)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(got.LastError, s) {
					t.Errorf("last error %q lacks %q", got.LastError, s)
				}
			}
			if sk != nil && len(sk.requests()) != tt.attempts {
				t.Errorf("sink got %d requests, want %d", len(sk.requests()), tt.attempts)
			}
		})
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	sk := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere?token=s3cret", http.StatusTemporaryRedirect)
	})
	d := dest("crm", sk.URL+"/hook")
	d.Retry.MaxAttempts = 2
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	startManager(t, st, []config.Destination{d}, testOptions())

	got := waitState(t, st, evID, "crm", store.StateDead)
	if followed.Load() != 0 {
		t.Fatalf("redirect followed %d times", followed.Load())
	}
	if got.Attempts != 2 || got.LastStatus != 307 {
		t.Fatalf("attempts %d, last status %d; want 2 (3xx is retried), 307", got.Attempts, got.LastStatus)
	}
	if !strings.Contains(got.LastError, "redirect") || !strings.Contains(got.LastError, "/elsewhere") {
		t.Errorf("last error %q does not name the redirect target", got.LastError)
	}
	if strings.Contains(got.LastError, "s3cret") {
		t.Errorf("last error %q leaks the Location's query", got.LastError)
	}
}

// TestHangingDestinationDoesNotDelayOthers holds every request to one
// destination until the end of the test; another destination's deliveries
// must all complete meanwhile.
func TestHangingDestinationDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Int32
	slow := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newSink(t, status(200))
	t.Cleanup(func() { close(release) }) // runs before the sinks close

	slowD, fastD := dest("slow", slow.URL), dest("fast", fast.URL)
	slowD.Concurrency, fastD.Concurrency = 1, 1
	slowD.Timeout = config.Duration(time.Minute)
	st := newTestStore(t)
	var slowIDs, fastIDs []string
	for range 3 {
		slowIDs = append(slowIDs, accept(t, st, store.Event{Body: []byte("s")}, "slow"))
	}
	for range 5 {
		fastIDs = append(fastIDs, accept(t, st, store.Event{Body: []byte("f")}, "fast"))
	}
	opts := testOptions()
	opts.DrainTimeout = 10 * time.Millisecond
	r := startManager(t, st, []config.Destination{slowD, fastD}, opts)

	waitFor(t, "the slow destination to hang", func() bool { return hung.Load() == 1 })
	for _, id := range fastIDs {
		waitState(t, st, id, "fast", store.StateDelivered)
	}
	if h := hung.Load(); h != 1 {
		t.Fatalf("slow sink got %d requests with concurrency 1, want 1", h)
	}
	// A second slow delivery is leased ahead, waiting for the slot; it is
	// not an attempt in flight.
	for _, s := range r.States() {
		if s.Name == "slow" && s.InFlight != 1 {
			t.Fatalf("slow destination: InFlight = %d, want 1", s.InFlight)
		}
	}
	for _, id := range slowIDs {
		if d := deliveryOf(t, st, id, "slow"); d.Attempts != 0 || d.State != store.StatePending {
			t.Fatalf("slow delivery %s: %d attempts, state %s; want still pending", id, d.Attempts, d.State)
		}
	}
}

// TestShutdownReleasesInFlight stops the manager while an attempt hangs: the
// delivery must be given back at once, with no attempt recorded.
func TestShutdownReleasesInFlight(t *testing.T) {
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	sk := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(unblock) })
	d := dest("crm", sk.URL)
	d.Timeout = config.Duration(time.Minute)
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	opts := testOptions()
	opts.DrainTimeout = 20 * time.Millisecond
	r := startManager(t, st, []config.Destination{d}, opts)

	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("the attempt never reached the sink")
	}
	r.stop(t)

	got := deliveryOf(t, st, evID, "crm")
	if got.State != store.StatePending || got.Attempts != 0 || len(got.AttemptLog) != 0 {
		t.Fatalf("after shutdown: state %s, %d attempts; want pending, 0", got.State, got.Attempts)
	}
	// Released due now: leasable at once, not after the 1m+30s lease.
	leased, err := st.Lease(context.Background(), "crm", 10, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].ID != got.ID {
		t.Fatalf("Lease after shutdown = %v, %v; want the released delivery", leased, err)
	}
}

// TestShutdownDrainsInFlight stops the manager while an attempt is running
// and the drain time is long enough: the attempt finishes and is recorded.
func TestShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{}, 1)
	proceed := make(chan struct{})
	sk := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-proceed
	})
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	r := startManager(t, st, []config.Destination{dest("crm", sk.URL)}, testOptions())

	<-entered
	r.cancel()
	// Run must wait for the attempt rather than return while it runs.
	select {
	case <-r.done:
		t.Fatal("Run returned while an attempt was in flight within the drain time")
	case <-time.After(20 * time.Millisecond):
	}
	close(proceed)
	r.stop(t)
	if got := deliveryOf(t, st, evID, "crm"); got.State != store.StateDelivered || got.Attempts != 1 {
		t.Fatalf("state %s, %d attempts; want delivered, 1", got.State, got.Attempts)
	}
}

func TestWakeDeliversWithoutPolling(t *testing.T) {
	sk := newSink(t, status(200))
	st := newTestStore(t)
	opts := testOptions()
	opts.PollInterval = time.Hour // only a Wake can make it look again
	d := dest("crm", sk.URL)
	cq := &countingQueue{Queue: st}
	r := startManager(t, cq, []config.Destination{d}, opts)
	waitFor(t, "the first (empty) lease", func() bool { return cq.leases.Load() > 0 })

	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	r.Wake("crm")
	r.Wake("no-such-destination") // ignored
	waitState(t, st, evID, "crm", store.StateDelivered)
}

func TestNewManager(t *testing.T) {
	good := dest("crm", "https://crm.example/hook")
	tests := []struct {
		name    string
		dests   []config.Destination
		wantErr error
		count   int
	}{
		{"agent destinations are skipped", []config.Destination{good, {Name: "office", Agent: "office-1", URL: "http://10.0.0.5/hook"}}, nil, 1},
		{"bad url", []config.Destination{dest("x", "ftp://x/")}, ErrBadDestination, 0},
		{"relative url", []config.Destination{dest("x", "/hook")}, ErrBadDestination, 0},
		{"duplicate", []config.Destination{good, good}, ErrBadDestination, 0},
		{"bad secret", []config.Destination{func() config.Destination { d := good; d.SigningSecret = "whsec_%%%"; return d }()}, ErrBadSecret, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewManager(newTestStore(t), tt.dests, testOptions())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "%%%") {
					t.Fatalf("error %q leaks the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.set.Load().byName); n != tt.count {
				t.Fatalf("%d dispatchers, want %d", n, tt.count)
			}
			m.Wake("office") // an agent destination: a no-op, must not block
		})
	}
}

// flakyQueue wraps a real queue and fails chosen calls, to play a store that
// goes down or loses leases.
type flakyQueue struct {
	Queue
	leaseFails    atomic.Int32 // Lease calls still to fail
	completeFails atomic.Int32 // successes still to fail to settle
	completeErr   error
	completes     atomic.Int32
}

func (f *flakyQueue) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	if f.leaseFails.Add(-1) >= 0 {
		return nil, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return f.Queue.Lease(ctx, dest, n, lease)
}

// Settle fails the first completeFails successes with completeErr, through
// done, as the store answers.
func (f *flakyQueue) Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error)) {
	if o.State == store.StateDelivered {
		f.completes.Add(1)
		if f.completeFails.Add(-1) >= 0 {
			done(f.completeErr)
			return
		}
	}
	f.Queue.Settle(ctx, d, o, done)
}

func TestStoreFailures(t *testing.T) {
	tests := []struct {
		name          string
		leaseFails    int32
		completeFails int32
		completeErr   error
		wantState     store.DeliveryState
		wantCompletes int32
		wantLog       map[string]int
	}{
		{
			name:       "lease fails, then the store recovers",
			leaseFails: 2, wantState: store.StateDelivered, wantCompletes: 1,
			wantLog: map[string]int{"lease failed": 1, "store answers again": 1},
		},
		{
			name:          "recording fails, then the store recovers",
			completeFails: 2, completeErr: fmt.Errorf("flaky: %w", store.ErrUnavailable),
			wantState: store.StateDelivered, wantCompletes: 3,
			wantLog: map[string]int{"recording outcome failed": 1, "outcome recorded after store recovered": 1},
		},
		{
			name:          "lease lost: not recorded, not retried",
			completeFails: 1, completeErr: fmt.Errorf("flaky: %w", store.ErrLeaseLost),
			wantState: store.StatePending, wantCompletes: 1,
			wantLog: map[string]int{"lease lost before the outcome was recorded": 1},
		},
	}
	// The worker hands its outcome over without waiting (Settle), and the
	// store fails it through done; the retries of a failed outcome wait
	// (store.SettleWait).
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk := newSink(t, status(200))
			st := newTestStore(t)
			fq := &flakyQueue{Queue: st, completeErr: tt.completeErr}
			fq.leaseFails.Store(tt.leaseFails)
			fq.completeFails.Store(tt.completeFails)
			var q Queue = fq
			var logs testlog.Buffer
			opts := testOptions()
			opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
			r := startManager(t, q, []config.Destination{dest("crm", sk.URL)}, opts)

			waitFor(t, "the outcome to be written", func() bool { return fq.completes.Load() >= tt.wantCompletes })
			if tt.wantState == store.StateDelivered {
				waitState(t, st, evID, "crm", tt.wantState)
			}
			r.stop(t)
			if got := deliveryOf(t, st, evID, "crm"); got.State != tt.wantState {
				t.Errorf("state %s, want %s", got.State, tt.wantState)
			}
			if n := fq.completes.Load(); n != tt.wantCompletes {
				t.Errorf("a success settled %d times, want %d", n, tt.wantCompletes)
			}
			for s, n := range tt.wantLog {
				if got := strings.Count(logs.String(), s); got != n {
					t.Errorf("log has %q %d times, want %d; log:\n%s", s, got, n, logs.String())
				}
			}
			if strings.Contains(logs.String(), "token=") || strings.Contains(logs.String(), sk.URL+"?") {
				t.Errorf("log leaks a URL query:\n%s", logs.String())
			}
		})
	}
}

// TestLeasesInBatches delivers a backlog to a quick sink: while every
// attempt slot has a delivery the dispatcher leases at least half a pool at
// a time, never one delivery per freed slot.
func TestLeasesInBatches(t *testing.T) {
	const events = 200
	sk := newSink(t, status(200))
	d := dest("crm", sk.URL)
	d.Concurrency = 8
	st := newTestStore(t)
	var ids []string
	for range events {
		ids = append(ids, accept(t, st, store.Event{Body: []byte("x")}, "crm"))
	}
	cq := &countingQueue{Queue: st}
	startManager(t, cq, []config.Destination{d}, testOptions())
	for _, id := range ids {
		waitState(t, st, id, "crm", store.StateDelivered)
	}
	// Every lease but the last finds at least leaseBatch deliveries due.
	if n, most := int(cq.nonEmpty.Load()), events/leaseBatch(d.Concurrency)+1; n > most {
		t.Fatalf("%d Lease calls leased the %d deliveries, want at most %d", n, events, most)
	}
}

// TestYieldsToIngest runs a destination while Options.Yield says ingest is
// backed up: each Lease waits up to yieldFor first, so Lease calls (polls
// every 5 ms here) come at least that far apart, and every event is still
// delivered, since the wait is bounded; OnYield reports the waits. Once
// ingest is no longer backed up, a Wake is answered without that wait.
func TestYieldsToIngest(t *testing.T) {
	sk := newSink(t, status(200))
	st := newTestStore(t)
	cq := &countingQueue{Queue: st}
	var backedUp atomic.Bool
	backedUp.Store(true)
	opts := testOptions()
	opts.Yield = backedUp.Load
	var yielded atomic.Int64 // ns reported to OnYield for crm
	opts.OnYield = func(dest string, waited time.Duration) {
		if dest == "crm" {
			yielded.Add(int64(waited))
		}
	}
	r := startManager(t, cq, []config.Destination{dest("crm", sk.URL)}, opts)
	var ids []string
	for range 3 {
		ids = append(ids, accept(t, st, store.Event{Body: []byte("x")}, "crm"))
		r.Wake("crm")
	}
	for _, id := range ids {
		waitState(t, st, id, "crm", store.StateDelivered)
	}
	calls := cq.calls()
	if len(calls) < 2 {
		t.Fatalf("%d Lease calls, want at least 2", len(calls))
	}
	// Less a step: the wait is counted in steps as they were meant to
	// last, and the calls are timed as they reach the store.
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < yieldFor-yieldStep {
			t.Fatalf("Lease %d came %v after the one before while ingest was backed up, want at least %v", i, gap, yieldFor)
		}
	}
	if got, least := time.Duration(yielded.Load()), time.Duration(len(calls)-1)*(yieldFor-yieldStep); got < least {
		t.Fatalf("OnYield reported %v for crm, want at least %v (%d Lease calls)", got, least, len(calls))
	}
	backedUp.Store(false)
	id := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	r.Wake("crm")
	waitState(t, st, id, "crm", store.StateDelivered)
}

// TestLeaseExtendedWhileWaiting makes workers wait on the rate limit longer
// than their lease: the lease must be extended, so no delivery is taken over
// and sent twice.
func TestLeaseExtendedWhileWaiting(t *testing.T) {
	sk := newSink(t, status(200))
	d := dest("crm", sk.URL)
	// Lease 2s, extended every 667ms: an extension may come more than a
	// second late (a loaded machine) before the lease lapses.
	d.Timeout = config.Duration(2 * time.Second)
	d.Concurrency = 3
	d.RateLimit = 0.8 // the 3rd delivery waits about 2.5s
	st := newTestStore(t)
	var ids []string
	for range 3 {
		ids = append(ids, accept(t, st, store.Event{Body: []byte("x")}, "crm"))
	}
	ext := &countingQueue{Queue: st}
	opts := testOptions()
	opts.LeaseMargin = time.Nanosecond
	startManager(t, ext, []config.Destination{d}, opts)

	for _, id := range ids {
		if got := waitState(t, st, id, "crm", store.StateDelivered); got.Attempts != 1 {
			t.Fatalf("delivery %s: %d attempts, want 1", id, got.Attempts)
		}
	}
	if n := len(sk.requests()); n != 3 {
		t.Fatalf("sink got %d requests, want 3 (a lost lease would send twice)", n)
	}
	if ext.extends.Load() == 0 {
		t.Fatal("no lease was extended")
	}
}

// countingQueue counts the calls that tests cannot see in the store.
type countingQueue struct {
	Queue
	extends  atomic.Int32
	leases   atomic.Int32 // returned Lease calls
	nonEmpty atomic.Int32 // returned Lease calls that leased something

	mu sync.Mutex
	at []time.Time // when each Lease call came
}

// calls returns when each Lease call came, in order.
func (c *countingQueue) calls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

func (c *countingQueue) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	defer c.leases.Add(1)
	c.mu.Lock()
	c.at = append(c.at, time.Now())
	c.mu.Unlock()
	ds, err := c.Queue.Lease(ctx, dest, n, lease)
	if len(ds) > 0 {
		c.nonEmpty.Add(1)
	}
	return ds, err
}

func (c *countingQueue) ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error {
	c.extends.Add(1)
	return c.Queue.ExtendLease(ctx, d, lease)
}

// heldOutcomes is a store whose successes wait in pending until the test
// lets them through to the real store.
type heldOutcomes struct {
	testStore
	pending chan func()
}

func (h heldOutcomes) Settle(ctx context.Context, d store.Delivery, o store.Settlement, done func(error)) {
	if o.State == store.StateDelivered {
		h.pending <- func() { h.testStore.Settle(ctx, d, o, done) }
		return
	}
	h.testStore.Settle(ctx, d, o, done)
}

// Run returns only when the outcomes that workers handed to the store
// without waiting are written: a relay that exits must not leave a
// delivered event to be delivered again. That holds too when an outcome
// reaches the store after the drain time ran out: the attempt was made.
func TestRunWaitsForOutcomesNotWaitedFor(t *testing.T) {
	tests := []struct {
		name  string
		drain time.Duration // 0: testOptions' own, longer than the wait
	}{
		{"within the drain time", 0},
		{"after the drain time ran out", 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk := newSink(t, status(200))
			st := newTestStore(t)
			h := heldOutcomes{testStore: st, pending: make(chan func(), 1)}
			evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
			opts := testOptions()
			if tt.drain > 0 {
				opts.DrainTimeout = tt.drain
			}
			r := startManager(t, h, []config.Destination{dest("crm", sk.URL)}, opts)

			var write func()
			select {
			case write = <-h.pending:
			case <-time.After(waitTimeout):
				t.Fatal("no outcome was handed to the store")
			}
			r.cancel()
			select {
			case <-r.done:
				t.Fatal("Run returned before the outcome it handed off was written")
			case <-time.After(100 * time.Millisecond):
			}
			write()
			r.stop(t)
			if got := deliveryOf(t, st, evID, "crm"); got.State != store.StateDelivered {
				t.Fatalf("state %s after Run returned, want delivered", got.State)
			}
		})
	}
}
