// Package agent owns delivery behind firewalls: the relay's agent endpoint
// (Server) and the agent that runs inside the receiver's network (Client,
// the engine of `relay agent`).
//
// The agent dials out only, over HTTPS (through HTTPS_PROXY where set), and
// speaks two calls on the relay's ingest listener: a long-poll that hands it
// deliveries (PathLease) and a report that records outcomes and doubles as
// the heartbeat (PathReport). docs/agent.md explains why long-polling rather
// than a WebSocket, and describes the protocol.
//
// The Server is a transport. Everything about a delivery but the HTTP
// attempt is the destination's deliver.Pipeline, the same code as direct
// delivery: whether a poll may lease (its circuit breaker: nothing while
// open, one probe after the cooldown), the request (headers, signature and
// transform, built on the relay, so the signing secret never leaves it; and
// the tls settings, sent once per destination in a lease answer), and
// settling what the agent reports (policy, breaker, metrics, log line,
// outcome write). What the Server keeps is about the wire: tickets, polls,
// heartbeats, which agent holds which lease and which delivery is a probe.
//
// Deliveries are leased from the store exactly as a local worker leases
// them, with a visibility timeout (ServerOptions.Lease) that the agent's
// heartbeats extend while it holds them. An agent that dies, or whose
// network goes away, stops extending; its leases expire and the deliveries
// are handed to the next agent (at-least-once; receivers drop repeats by
// Idempotency-Key). Reports carry an opaque ticket holding the lease, so
// the relay needs no memory of what it handed out to settle them.
//
// The Client reconnects forever with capped exponential backoff and jitter,
// treats a call that goes unanswered past its deadline as a dead connection,
// keeps outcomes until the relay acknowledges them (so a dropped connection
// loses no acknowledged work and repeats none), and bounds the attempts it
// runs at once. Several agents with the same name share their destinations'
// work: each poll leases what is due, and the store never leases one
// delivery twice.
//
// It must not know ingest or routing: deliveries reach it only through the
// store's queues, and both sides speak only the protocol of protocol.go. Nor
// does it decide what becomes of a delivery: its destination's
// deliver.Pipeline does.
package agent
