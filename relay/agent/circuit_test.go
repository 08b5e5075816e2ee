package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
)

// TestAgentCircuitBreaker runs an agent destination whose receiver fails.
// After circuit.failures failed attempts the relay's breaker opens and
// agents are handed nothing for it; each cooldown lets exactly one probe
// through; once the receiver answers again the probe closes the circuit and
// the queue drains. The sink asks the admin API for the destination's state
// as each request arrives, so every attempt is checked against the state it
// was made in, with no timing assumed.
func TestAgentCircuitBreaker(t *testing.T) {
	e := newEnv(t, `
    retry: {initial_interval: 10ms, max_interval: 50ms, max_attempts: 100}
    circuit: {failures: 2, cooldown: 300ms}
`)
	e.sink.answer(http.StatusServiceUnavailable, "")
	e.sink.watch(func() destinationView { return e.office(t) })
	o := e.clientOptions(e.proxy)
	o.Concurrency = 1
	startAgent(t, o)

	ids := []string{e.post(t, "m-opens")}
	waitFor(t, "relay_circuit_state to say open", func() bool {
		return e.metric(t, `relay_circuit_state{destination="office"}`) == `relay_circuit_state{destination="office"} 2`
	})
	// Queued while open: they may go out only as a probe, or once closed.
	ids = append(ids, e.post(t, "m-while-open-1"), e.post(t, "m-while-open-2"))
	waitFor(t, "two failed probes", func() bool { return len(e.sink.requests()) >= 4 })
	e.sink.answer(0, "")
	e.sink.answered(t, len(ids))
	var final destinationView
	waitFor(t, "the circuit to close and the queue to drain", func() bool {
		final = e.office(t)
		return final.Circuit == deliver.CircuitClosed && final.Queued == 0
	})
	if final.ConsecutiveFailures != 0 {
		t.Errorf("closed circuit shows %d consecutive failures, want 0", final.ConsecutiveFailures)
	}
	e.sink.watch(nil)

	hits := e.sink.requests()
	for i, h := range hits[:2] {
		if h.seen.Circuit != deliver.CircuitClosed || h.seen.ConsecutiveFailures != i {
			t.Errorf("attempt %d was made with the circuit %s after %d failures, want closed after %d",
				i+1, h.seen.Circuit, h.seen.ConsecutiveFailures, i)
		}
	}
	probes, lastFailures, closedAgain := 0, 1, false
	for i, h := range hits[2:] {
		n := i + 3
		switch h.seen.Circuit {
		case deliver.CircuitHalfOpen:
			probes++
			// One probe per cooldown: each saw one failure more than the
			// last, the failure of the probe before it.
			if closedAgain || h.seen.ConsecutiveFailures != lastFailures+1 {
				t.Errorf("attempt %d: a probe after %d consecutive failures, want %d (one probe per cooldown)",
					n, h.seen.ConsecutiveFailures, lastFailures+1)
			}
			lastFailures = h.seen.ConsecutiveFailures
			if h.status == http.StatusOK {
				closedAgain = true
			}
		case deliver.CircuitClosed:
			if !closedAgain {
				t.Errorf("attempt %d made with the circuit closed before a probe succeeded", n)
			}
		default:
			t.Errorf("attempt %d was made while the circuit was %q: an open circuit hands out nothing", n, h.seen.Circuit)
		}
	}
	if probes < 3 || !closedAgain {
		t.Errorf("%d probes, closed by one: %v; want at least two failed probes and one that succeeded", probes, closedAgain)
	}

	logs := e.logs.String()
	for _, want := range []string{
		"deliver: circuit open; destination paused, its deliveries wait in the queue",
		"deliver: circuit half-open; sending one probe delivery",
		"deliver: circuit closed; destination resumed",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// Nothing was burned while open: every attempt recorded reached the
	// receiver, and every delivery was delivered.
	attempts := 0
	for i, d := range e.records(t, ids...) {
		attempts += len(d.AttemptLog)
		if d.State != store.StateDelivered {
			t.Errorf("delivery %d is %s, want delivered", i, d.State)
		}
	}
	if attempts != len(hits) {
		t.Errorf("%d attempts recorded, %d reached the receiver", attempts, len(hits))
	}
}
