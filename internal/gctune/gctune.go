package gctune

import "runtime/debug"

// Percent is the garbage collector's target that serve and agent set when
// GOGC is not set. Relay's live heap is a few MB, so the collector's pace is
// set by its smallest heap goal, 4 MB times GOGC/100: at Go's default of 100
// it ran dozens of times a second under load and took about a fifth of the
// CPU per delivery. 400 made that 16 MB and 800 makes it 32 MB, for about
// 3 points of the delivery benchmark's ratio to its ceiling (median of ten
// interleaved runs each, 68.9 against 65.7 %; docs/benchmarks.md, fifth
// round). The cost is heap: about 30 MB more than at Go's default while
// the live heap is small, and 9 rather than 2 times the live heap when it is
// large (many big bodies in flight); GOMEMLIMIT, which Go honours, or a
// lower GOGC bounds it where memory is tight.
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
