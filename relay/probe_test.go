package relay_test

import (
	"net/http"
	"testing"

	"github.com/relaygw/relay/relay"
)

// probeConfig sends webhook 1 to crm, which dead-letters on its first
// failure and whose circuit, once open, stays open for an hour.
const probeConfig = `
routes:
  - webhook_id: "1"
    to: [crm]
destinations:
  - name: crm
    url: "{{a}}/x"
    retry: {max_attempts: 1}
    circuit: {failures: 1, first_cooldown: 1h, cooldown: 1h}
`

// An operator's DLQ replay counts as the circuit's probe: the replayed
// delivery is sent at once although the circuit is open for another hour,
// and its success closes the circuit.
func TestReplayIsTheProbe(t *testing.T) {
	tests := []struct {
		name   string
		replay func(r *running, id string) string
	}{
		{"replay of a destination's dlq", func(*running, string) string { return "/api/dlq/replay?destination=crm" }},
		{"replay of one delivery", func(_ *running, id string) string { return "/api/dlq/" + id + "/replay" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, down := flaky(t)
			down.Store(true)
			r := startFile(t, probeConfig, sk, nil, relay.Options{})
			if code, a := post(t, r.Ingest+"/hooks/1", "application/json", []byte(`{"mid":"p-1"}`)); code != http.StatusAccepted {
				t.Fatalf("post: %d %+v", code, a)
			}
			var dead []struct {
				ID string `json:"id"`
			}
			eventually(t, "the delivery is dead-lettered", func() bool {
				r.call(t, http.MethodGet, "/api/dlq?destination=crm", http.StatusOK, &dead)
				return len(dead) == 1
			})
			if c := circuitOf(t, r, "crm"); c != "open" {
				t.Fatalf("circuit %q after the failure, want open", c)
			}
			down.Store(false)
			r.call(t, http.MethodPost, tt.replay(r, dead[0].ID), http.StatusOK, nil)
			sk.waitFor(t, 2) // the failed attempt, then the replay
			eventually(t, "the circuit closes", func() bool { return circuitOf(t, r, "crm") == "closed" })
		})
	}
}

func circuitOf(t *testing.T, r *running, dest string) string {
	t.Helper()
	var states []struct {
		Name    string `json:"name"`
		Circuit string `json:"circuit"`
	}
	r.call(t, http.MethodGet, "/api/destinations", http.StatusOK, &states)
	for _, s := range states {
		if s.Name == dest {
			return s.Circuit
		}
	}
	t.Fatalf("no destination %s in %+v", dest, states)
	return ""
}
