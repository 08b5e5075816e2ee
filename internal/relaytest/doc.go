// Package relaytest runs a relay in-process for tests: relay.New on the
// given config, Run in a goroutine, and a clean stop when the test ends.
//
// It is for tests only and must not hold test assertions about the relay's
// behaviour: callers check what they test through the relay's listeners.
package relaytest
