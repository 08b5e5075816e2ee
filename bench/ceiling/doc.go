// Command ceiling runs the minimal servers that Relay's ingest is measured
// against by bench/run: the same request handled with nothing but
// net/http and the one store write that a durable relay cannot avoid.
//
//	ceiling -mode bare  -listen ADDR                answer 202, nothing stored
//	ceiling -mode bolt  -listen ADDR -path DIR      one bbolt Batch (fsync) per request
//	ceiling -mode redis -listen ADDR -redis URL     one Lua script per request: SET NX EX + XADD
//	ceiling -mode redis -listen ADDR -redis URL -forward URL
//	                                                the same, and a minimal forwarder draining
//	                                                the stream: XREADGROUP -> POST -> XACK
//
// bench/run starts them; the bare mode is also its delivery sink.
//
// It is a benchmark tool, not part of Relay.
//
// It is a benchmark tool, not part of Relay. It takes only ingest's field
// extractor from Relay (to read the mid as Relay does) and writes with
// bbolt and go-redis directly: it must not use Relay's store, routing or
// delivery, so that a ceiling never carries their cost.
package main
