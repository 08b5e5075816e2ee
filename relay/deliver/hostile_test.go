package deliver

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// TestHostileDestinations runs one relay (one Manager on a real bolt store)
// with seven hostile destinations and a healthy one. The hostile ones hang
// forever, answer after 5s, reset the connection, stream 100 MB, redirect,
// answer 429 with Retry-After, and answer 500 twenty times. All 500 events
// of the healthy destination must arrive, signed, while the hostile ones are
// still failing; each hostile one must be handled as specified.
func TestHostileDestinations(t *testing.T) {
	const healthyEvents = 500
	release := make(chan struct{})

	hang := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	slow := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-release:
		case <-r.Context().Done():
		}
	})
	reset := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with a RST, not a FIN
		conn.Close()
	})
	var streamed atomic.Int64
	streamDone := make(chan struct{})
	stream := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		defer close(streamDone)
		chunk := []byte(strings.Repeat("z", 32<<10))
		for streamed.Load() < 100<<20 {
			n, err := w.Write(chunk)
			streamed.Add(int64(n))
			if err != nil {
				return // the relay hung up, as it should
			}
		}
	})
	var followed atomic.Int32
	redirect := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere?token=s3cret", http.StatusFound)
	})
	busy := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	flaky := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 20 {
			http.Error(w, "try later", http.StatusInternalServerError)
		}
	})
	var healthyMu sync.Mutex
	healthyIDs := map[string]bool{}
	const secret = vectorSecret + " rotated-raw-secret"
	healthy := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		// The body is read by newSink; verify against what it recorded.
		healthyMu.Lock()
		defer healthyMu.Unlock()
		healthyIDs[r.Header.Get(HeaderEventID)] = true
	})
	t.Cleanup(func() { close(release) }) // before the sinks close

	hostile := func(name, url string) config.Destination {
		d := dest(name, url)
		d.Timeout = config.Duration(300 * time.Millisecond)
		d.Retry.MaxAttempts = 1000
		d.Circuit = config.Circuit{Failures: 3, Cooldown: config.Duration(100 * time.Millisecond)}
		return d
	}
	redirectD := hostile("redirect", redirect.URL+"/hook")
	redirectD.Retry.MaxAttempts = 3
	flakyD := hostile("flaky", flaky.URL)
	flakyD.Circuit = config.Circuit{Failures: 5, Cooldown: config.Duration(50 * time.Millisecond)}
	healthyD := dest("healthy", healthy.URL)
	healthyD.Concurrency = 4
	healthyD.SigningSecret = secret
	dests := []config.Destination{
		hostile("hang", hang.URL), hostile("slow", slow.URL), hostile("reset", reset.URL),
		hostile("stream", stream.URL), redirectD, hostile("busy", busy.URL), flakyD, healthyD,
	}

	st := newTestStore(t)
	ids := map[string][]string{}
	for _, d := range dests[:len(dests)-1] {
		n := 3
		if d.Name == "stream" || d.Name == "busy" {
			n = 1
		}
		for range n {
			ids[d.Name] = append(ids[d.Name], accept(t, st, store.Event{Body: []byte(`{"for":"` + d.Name + `"}`)}, d.Name))
		}
	}
	storetest.Fill(t, st, healthyEvents, "healthy")

	var circuits sync.Map // destination -> *circuitLog
	opts := testOptions()
	opts.DrainTimeout = 10 * time.Millisecond
	opts.OnCircuit = func(dest, state string) {
		l, _ := circuits.LoadOrStore(dest, &circuitLog{})
		l.(*circuitLog).add(dest, state)
	}
	r := startManager(t, st, dests, opts)

	// 1. Every healthy event arrives, while the hostile ones still fail.
	waitFor(t, "every healthy event to arrive", func() bool {
		healthyMu.Lock()
		defer healthyMu.Unlock()
		return len(healthyIDs) == healthyEvents
	})
	for _, name := range []string{"hang", "slow", "reset"} {
		for _, id := range ids[name] {
			if d := deliveryOf(t, st, id, name); d.State != store.StatePending {
				t.Errorf("%s delivery is %s after the healthy ones arrived, want still pending", name, d.State)
			}
		}
	}
	for _, req := range healthy.requests() {
		if err := verifyWebhook(secret, req.header, req.body, time.Now()); err != nil {
			t.Fatalf("healthy request %s: %v", req.header.Get(HeaderEventID), err)
		}
	}

	// 2. The 100 MB stream is delivered (the status arrived), recorded cut
	// short, and read no further than the cap: the receiver could not push
	// much more than the socket buffers hold before the relay hung up.
	got := waitState(t, st, ids["stream"][0], "stream", store.StateDelivered)
	if a := got.AttemptLog[0]; a.Status != 200 || len(a.Response) != responseKeep {
		t.Errorf("stream attempt = status %d, %d bytes kept; want 200, %d", a.Status, len(a.Response), responseKeep)
	}
	select {
	case <-streamDone:
	case <-time.After(waitTimeout):
		t.Fatal("the streaming receiver never saw the relay hang up")
	}
	if n := streamed.Load(); n >= 100<<20 {
		t.Errorf("the receiver streamed all %d bytes: the relay read past its cap", n)
	}

	// 3. Redirects are not followed: dead-lettered after max_attempts,
	// naming where the receiver pointed (without its query).
	for _, id := range ids["redirect"] {
		got := waitState(t, st, id, "redirect", store.StateDead)
		if got.Attempts != 3 || got.LastStatus != 302 || !strings.Contains(got.LastError, "/elsewhere") || strings.Contains(got.LastError, "s3cret") {
			t.Errorf("redirect delivery: %d attempts, status %d, error %q", got.Attempts, got.LastStatus, got.LastError)
		}
	}
	if followed.Load() != 0 {
		t.Errorf("a redirect was followed %d times", followed.Load())
	}

	// 4. 429 with Retry-After: 120 waits 120s, not the 10-20ms backoff.
	var b store.DeliveryRecord
	waitFor(t, "the 429 to be recorded", func() bool {
		b = deliveryOf(t, st, ids["busy"][0], "busy")
		return b.Attempts == 1
	})
	if a := b.AttemptLog[0]; a.Status != 429 || b.DueAt.Sub(a.At.Add(a.Duration)) < 119*time.Second {
		t.Errorf("429: status %d, due %v after the attempt; want 429 and 120s", a.Status, b.DueAt.Sub(a.At.Add(a.Duration)))
	}

	// 5. Twenty 500s: the circuit opens, probes, closes, and every delivery
	// arrives, none dead-lettered.
	for _, id := range ids["flaky"] {
		waitState(t, st, id, "flaky", store.StateDelivered)
	}
	l, _ := circuits.Load("flaky")
	if l == nil {
		t.Fatal("flaky: no circuit transition reported")
	}
	if states := l.(*circuitLog).get(); !slices.Contains(states, CircuitOpen) || states[len(states)-1] != CircuitClosed {
		t.Errorf("flaky circuit went %v, want it to open and end closed", states)
	}

	// 6. The destinations that hang, answer late or reset have open (or
	// probing) circuits and say why in their state.
	for _, s := range r.States() {
		want := map[string]string{"hang": "timed out", "slow": "timed out", "reset": ""}
		why, ok := want[s.Name]
		if !ok {
			continue
		}
		if s.Circuit == CircuitClosed || s.ConsecutiveFailures < 3 || s.LastError == "" || !strings.Contains(s.LastError, why) {
			t.Errorf("%s state = %+v, want an open circuit and a %q error", s.Name, s, why)
		}
	}
	if len(hang.requests()) == 0 || len(reset.requests()) == 0 {
		t.Error("the hanging or resetting receiver was never tried")
	}
}
