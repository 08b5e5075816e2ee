// Package gctune holds the garbage collector target that relay serve and
// relay agent run with, so that the binaries and the benchmarks that measure
// them use one setting.
//
// It must not know what the binaries do: it only sets the target, and
// leaves a GOGC the user set alone.
package gctune
