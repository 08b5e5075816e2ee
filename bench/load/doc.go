// Command load POSTs the provider's seed callback (a unique mid each) to one
// URL, or round robin to several (-url repeated), and prints what it
// measured as one JSON object. It replaces wrk and wrk2 for bench/run:
//
//	load -url URL -conns 64 -duration 10s               closed loop: as fast as the server answers
//	load -url URL -rate 2000 -duration 10s -conns 256   open loop: a fixed schedule
//
// In the open loop request i is due at start + i/rate whether or not earlier
// ones were answered, and its latency is counted from that scheduled time
// (wrk2's method), so a server that stalls is charged for the requests that
// queued behind the stall, not only for the one it stalled on.
//
// It is a benchmark tool, not part of Relay.
//
// It is a benchmark tool, not part of Relay: it imports none of Relay's
// packages and knows only the URL it posts to, so it measures any server
// the same way.
package main
