// Package state holds the live state of a destination as the admin API
// shows it (GET /api/destinations, relay_circuit_state, the console).
//
// Three packages fill one value of it: relay/deliver its attempts in flight
// and circuit breaker, the relay its agent's connection (relay/agent knows
// that), and relay/admin the queue depths. It lives apart from all three
// because admin must not import the delivery code, and the store, which
// all of them import, keeps durable records, not a process's live state.
// It must know nothing but this shape.
package state

import "time"

// Destination is one destination's live state, and one item of GET
// /api/destinations.
type Destination struct {
	Name string `json:"name"`
	// Configured is false for a destination that was removed from the
	// config while deliveries to it were still queued or dead-lettered.
	Configured bool   `json:"configured"`
	Agent      string `json:"agent,omitempty"`
	// AgentConnected is set for a destination served by an agent: whether
	// the agent was heard from recently.
	AgentConnected *bool `json:"agent_connected,omitempty"`
	Queued         int   `json:"queued"`
	Dead           int   `json:"dead"`
	// InFlight counts the attempts running now in this process (including
	// those waiting for the rate limit); 0 for an agent destination.
	InFlight int `json:"in_flight"`
	// Circuit is "closed", "open" or "half-open" (relay/deliver's
	// CircuitClosed, CircuitOpen, CircuitHalfOpen).
	Circuit string `json:"circuit,omitempty"`
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastSuccess and LastFailure are when the last attempts that ended so
	// ended; zero if none since the process started.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// LastError is the last failed attempt's error.
	LastError string `json:"last_error,omitempty"`
}
