// Package transform owns the jq side of Relay: compiling the expressions of
// routes[].filter and destinations[].transform (github.com/itchyny/gojq, a
// pure-Go jq), running them under a time and output-size limit, and encoding
// a transformation's result as the body (JSON or a form) and headers that a
// destination is sent.
//
// Its input is the body as ingest's tolerant reader sees it (ingest.Value):
// a trailing comma is accepted, integers too long for float64 stay exact as
// *big.Int, and bare tokens such as 91806828XXXX are strings.
//
// It does not know about delivery, routing tables or the store: route and
// deliver call it, and decide what an error means (no match; a dead letter).
// Expressions cannot read the environment ($ENV and env are empty), files or
// the network.
package transform
