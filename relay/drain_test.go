package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// slowSink answers only once release is closed; started gets one value per
// request as it arrives.
type slowSink struct {
	*httptest.Server
	started chan string
	release chan struct{}
}

func newSlowSink(t testing.TB) *slowSink {
	t.Helper()
	s := &slowSink{started: make(chan string, 100), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.started <- string(body)
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last first: the handlers return before Close waits.
	t.Cleanup(s.Close)
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
	})
	return s
}

const slowRoute = `
routes:
  - {webhook_id: "1001", to: [slow]}
destinations:
  - name: slow
    url: "{{a}}/slow"
    timeout: 30s
`

// startDrain starts a relay whose one destination is s, posts one event and
// waits until its delivery is in flight, then cancels Run.
func startDrain(t *testing.T, s *slowSink, shutdown time.Duration) (*running, string) {
	t.Helper()
	r := startFile(t, slowRoute, &sink{Server: s.Server}, nil, relay.Options{ShutdownTimeout: shutdown})
	code, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"in-flight"}`))
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %+v", code, a)
	}
	select {
	case <-s.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the delivery never started")
	}
	r.Cancel()
	return r, a.EventID
}

// reopen opens the stopped relay's store and returns the event's one
// delivery.
func reopen(t *testing.T, r *running, eventID string) (store.Store, store.DeliveryRecord) {
	t.Helper()
	st, err := bolt.Open(r.data, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	rec, err := st.Event(context.Background(), eventID)
	if err != nil || len(rec.Deliveries) != 1 {
		t.Fatalf("Event(%s): %+v, %v", eventID, rec, err)
	}
	return st, rec.Deliveries[0]
}

// While draining, new callbacks get 503 and readiness fails; the attempt
// in flight finishes and is recorded; Run returns nil.
func TestDrainFinishesInFlight(t *testing.T) {
	s := newSlowSink(t)
	r, eventID := startDrain(t, s, 20*time.Second)

	for i := 0; ; i++ {
		resp, err := http.Post(r.Ingest+"/hooks/1001", "application/json", bytes.NewReader(fmt.Appendf(nil, `{"mid":"late-%d"}`, i)))
		if err != nil {
			t.Fatalf("POST during the drain: %v (the listener must stay up and answer 503)", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			if !bytes.Contains(body, []byte(`"error"`)) || resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 answer %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
			}
			break
		}
		if i > 1000 {
			t.Fatal("ingest never started answering 503")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Get(r.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", resp.StatusCode)
	}
	select {
	case <-r.Done():
		t.Fatalf("Run returned (%v) while an attempt was in flight", r.Stop())
	default:
	}

	close(s.release)
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v, want nil after a drain", err)
	}
	_, d := reopen(t, r, eventID)
	if d.State != store.StateDelivered || d.Attempts != 1 {
		t.Fatalf("in-flight delivery after the drain: %s with %d attempts, want delivered with 1", d.State, d.Attempts)
	}
}

// An attempt still running at the drain deadline is cancelled and its
// delivery released back to the queue without counting an attempt, due at
// once for the next process.
func TestDrainDeadlineReleases(t *testing.T) {
	s := newSlowSink(t)
	r, eventID := startDrain(t, s, 300*time.Millisecond)
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v, want nil", err)
	}
	st, d := reopen(t, r, eventID)
	if d.State != store.StatePending || d.Attempts != 0 || len(d.AttemptLog) != 0 {
		t.Fatalf("delivery cut by the deadline: %s, %d attempts, log %v; want pending with none", d.State, d.Attempts, d.AttemptLog)
	}
	ds, err := st.Lease(context.Background(), "slow", 1, time.Minute)
	if err != nil || len(ds) != 1 || ds[0].ID != d.ID {
		t.Fatalf("Lease after restart: %v, %v; want the released delivery at once", ds, err)
	}
}
