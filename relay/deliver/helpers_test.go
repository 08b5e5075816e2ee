package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// testStore is what the tests need of a store: the Queue, plus Accept to
// queue work and Event to look at what was recorded.
type testStore interface {
	Queue
	Accept(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error)
	Event(ctx context.Context, id string) (store.EventRecord, error)
}

// newTestStore opens a real embedded store in a temporary directory.
func newTestStore(tb testing.TB) testStore {
	tb.Helper()
	st, err := bolt.Open(tb.TempDir(), bolt.Options{})
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// waitTimeout is generous: tests wait for states, never for durations.
const waitTimeout = 15 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dest returns a destination with test-sized intervals.
func dest(name, url string) config.Destination {
	return config.Destination{
		Name:        name,
		URL:         url,
		Timeout:     config.Duration(5 * time.Second),
		Concurrency: 2,
		Retry: config.Retry{
			MaxAttempts:     5,
			InitialInterval: config.Duration(10 * time.Millisecond),
			MaxInterval:     config.Duration(20 * time.Millisecond),
			MaxAge:          config.Duration(time.Hour),
		},
	}
}

func testOptions() Options {
	return Options{
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 5 * time.Millisecond,
		DrainTimeout: 5 * time.Second,
		Version:      "test",
	}
}

// running is a Manager started by startManager.
type running struct {
	*Manager
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and waits for it to return.
func (r *running) stop(tb testing.TB) {
	tb.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			tb.Errorf("Run: %v", err)
		}
		r.done <- nil // let a second stop (the cleanup) return at once
	case <-time.After(waitTimeout):
		tb.Fatal("Run did not return after cancel")
	}
}

func startManager(tb testing.TB, q Queue, dests []config.Destination, opts Options) *running {
	tb.Helper()
	m, err := NewManager(q, dests, opts)
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Manager: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	tb.Cleanup(func() { r.stop(tb) })
	return r
}

// accept queues one event for dests and returns its id.
func accept(tb testing.TB, st testStore, ev store.Event, dests ...string) string {
	tb.Helper()
	if ev.WebhookID == "" {
		ev.WebhookID = "1001"
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = time.Now()
	}
	res, err := st.Accept(context.Background(), ev, dests, store.Dedupe{Key: ev.DedupeKey, TTL: time.Hour})
	if err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	return res.EventID
}

// deliveryOf returns the event's delivery to dest.
func deliveryOf(tb testing.TB, st testStore, eventID, dest string) store.DeliveryRecord {
	tb.Helper()
	rec, err := st.Event(context.Background(), eventID)
	if err != nil {
		tb.Fatalf("Event(%s): %v", eventID, err)
	}
	for _, d := range rec.Deliveries {
		if d.Destination == dest {
			return d
		}
	}
	tb.Fatalf("event %s has no delivery to %s", eventID, dest)
	return store.DeliveryRecord{}
}

// waitState waits until the event's delivery to dest reaches state.
func waitState(tb testing.TB, st testStore, eventID, dest string, state store.DeliveryState) store.DeliveryRecord {
	tb.Helper()
	var d store.DeliveryRecord
	waitFor(tb, "delivery to "+dest+" to be "+string(state), func() bool {
		d = deliveryOf(tb, st, eventID, dest)
		return d.State == state
	})
	return d
}

// verifyWebhook checks a request the way a Standard Webhooks receiver does,
// written from the specification (standardwebhooks.com, "Verifying
// webhooks") and independent of Signer: the timestamp must be within five
// minutes of now, and one of the space-separated "v1,<base64>" signatures
// must equal base64(HMAC-SHA256(key, id "." timestamp "." body)), where key
// is the base64-decoded part of a "whsec_" secret. secret may hold several
// secrets separated by spaces (a rotation); one match is enough. A secret
// without the prefix is used as raw key bytes, Relay's extension.
func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %q is %v away from now", ts, d)
	}
	for _, s := range strings.Fields(secret) {
		key := []byte(s)
		if b64, ok := strings.CutPrefix(s, "whsec_"); ok {
			if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
				return fmt.Errorf("secret is not base64: %v", err)
			}
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range strings.Fields(sigs) {
			version, b64, ok := strings.Cut(sig, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("no signature in %q matches", sigs)
}

// TestVerifierAcceptsTheSpecVector checks the test's verifier itself against
// the published Standard Webhooks vector, so that it can be trusted to judge
// Relay's signatures.
func TestVerifierAcceptsTheSpecVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", "v1,bm90IGl0 "+vectorSignature)
	at := time.Unix(vectorTimestamp, 0).Add(time.Minute)
	if err := verifyWebhook(vectorSecret, h, []byte(vectorBody), at); err != nil {
		t.Fatalf("spec vector: %v", err)
	}
	bad := []struct {
		name string
		body string
		at   time.Time
	}{
		{"body changed", vectorBody + " ", at},
		{"too old", vectorBody, at.Add(10 * time.Minute)},
	}
	for _, b := range bad {
		if err := verifyWebhook(vectorSecret, h, []byte(b.body), b.at); err == nil {
			t.Errorf("%s: verified, want a failure", b.name)
		}
	}
}
