package relay_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/store"
)

// TestRedirectIntoTheRelayRefused: a receiver of a follow_redirects
// destination answers 307 to the relay's own admin API (POST
// /api/dlq/replay, open without a token on loopback) or to its own /hooks
// (a loop that creates an event per hop). Neither is followed, although
// the destination is on loopback, where redirects to other loopback ports
// are allowed: the relay's own listeners never are. The attempt fails for
// good, with the reason in its error.
func TestRedirectIntoTheRelayRefused(t *testing.T) {
	tests := []struct {
		name string
		path func(r *relaytest.Relay) string // the Location
	}{
		{"admin dlq replay", func(r *relaytest.Relay) string { return r.Admin + "/api/dlq/replay" }},
		{"ingest hooks loop", func(r *relaytest.Relay) string { return r.Ingest + "/hooks/1001" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var location atomic.Pointer[string]
			steer := &sink{seen: make(chan struct{}, 1000)}
			steer.Server = httptest.NewServer(redirectTo(steer, &location))
			t.Cleanup(steer.Close)
			dead := newSinkFunc(t, func() int { return http.StatusBadRequest })
			text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstore: {embedded: {path: " + t.TempDir() + "}}\n" +
				"delivery: {poll_interval: 50ms}\n" + `
routes:
  - {webhook_id: "1001", to: [steer]}
  - {webhook_id: "1002", to: [dead]}
destinations:
  - name: steer
    url: "` + steer.URL + `/hook"
    follow_redirects: true
    retry: {max_attempts: 5, initial_interval: 10ms, max_interval: 50ms}
  - name: dead
    url: "` + dead.URL + `/hook"
    retry: {max_attempts: 1}
`
			cfg, err := config.Load([]byte(text), "test.yaml")
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			r := relaytest.Start(t, cfg, relay.Options{})
			loc := tt.path(r)
			location.Store(&loc)

			// One delivery in the DLQ, for the replay to find.
			_, d := post(t, r.Ingest+"/hooks/1002", "application/json", []byte(`{"mid":"d-1"}`))
			deadRec := waitDelivery(t, r, d.EventID, store.StateDead)

			_, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"s-1"}`))
			got := waitDelivery(t, r, a.EventID, store.StateDead)
			if len(got.AttemptLog) != 1 || !strings.Contains(got.LastError, "redirect refused: status 307 to "+loc) ||
				!strings.Contains(got.LastError, "is one of the relay's own listeners") {
				t.Fatalf("%d attempts, last error %q; want one attempt refused as a redirect to the relay's own listener", len(got.AttemptLog), got.LastError)
			}
			if n := steer.count(); n != 1 {
				t.Errorf("the receiver got %d requests, want 1 (no loop)", n)
			}
			again := waitDelivery(t, r, d.EventID, store.StateDead)
			if again.UpdatedAt != deadRec.UpdatedAt || again.Attempts != 1 {
				t.Errorf("the dead-lettered delivery changed: %+v, was %+v; want it untouched in the DLQ", again.Delivery, deadRec.Delivery)
			}
		})
	}
}

// redirectTo answers every request with a 307 to *loc, recording it in s.
func redirectTo(s *sink, loc *atomic.Pointer[string]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, received{header: req.Header.Clone()})
		s.mu.Unlock()
		w.Header().Set("Location", *loc.Load())
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
}

// waitDelivery waits until the event's only delivery is in state, read
// through the admin API, and returns it.
func waitDelivery(t *testing.T, r *relaytest.Relay, eventID string, state store.DeliveryState) store.DeliveryRecord {
	t.Helper()
	var d store.DeliveryRecord
	eventually(t, "delivery of "+eventID+" is "+string(state), func() bool {
		resp, err := http.Get(r.Admin + "/api/events/" + eventID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rec store.EventRecord
		if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil || len(rec.Deliveries) != 1 {
			return false
		}
		d = rec.Deliveries[0]
		return d.State == state
	})
	return d
}
