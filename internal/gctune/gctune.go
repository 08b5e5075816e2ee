package gctune

import "runtime/debug"

// Percent is the garbage collector's target that serve and agent set when
// GOGC is not set: Relay's live heap is a few MB, so at Go's default the
// collector ran dozens of times a second; this trades about 30 MB of heap
// for less CPU per delivery (docs/benchmarks.md, "Why the tuned constants
// are what they are"). GOMEMLIMIT or a lower GOGC bounds the heap.
const Percent = 800

// Apply sets Percent unless the operator set GOGC, and returns a function
// that restores the previous setting (for benchmarks; binaries ignore it).
func Apply(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(Percent)
	return func() { debug.SetGCPercent(old) }
}
