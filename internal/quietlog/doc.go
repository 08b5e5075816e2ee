// Package quietlog keeps logs readable while something keeps failing: an
// slog.Handler wrapper that logs a repeated error once, then at most one
// summary line per interval ("… (repeated 15129 times in 25s)"). It knows
// nothing of Relay's components beyond the attribute names that carry a
// cause; metrics, not logs, keep the exact counts.
package quietlog
