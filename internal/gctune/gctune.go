// Package gctune holds the garbage collector target that relay serve and
// relay agent run with, so that the binaries and the benchmarks that measure
// them use one setting.
package gctune

import "runtime/debug"

// Percent is the garbage collector's target that serve and agent set when
// GOGC is not set. Relay's live heap is a few MB, so at Go's default of 100
// the collector ran dozens of times a second under load and took about a
// fifth of the CPU per delivery; at 400 the heap grows by about 10 MB.
// docs/benchmarks.md has the measurements.
const Percent = 400

// Apply sets Percent unless the operator set GOGC, and returns a function
// that restores the previous setting (for benchmarks; binaries ignore it).
func Apply(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(Percent)
	return func() { debug.SetGCPercent(old) }
}
