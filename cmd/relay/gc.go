package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target that serve and agent set
// when GOGC is not set. Relay's live heap is a few MB, so at Go's default of
// 100 the collector ran dozens of times a second under load and took about
// a fifth of the CPU per delivery; at 400 the heap grows by about 10 MB.
// docs/benchmarks.md has the measurements.
const defaultGCPercent = 400

// tuneGC sets defaultGCPercent unless the operator set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
