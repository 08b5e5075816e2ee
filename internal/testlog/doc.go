// Package testlog holds what tests use to read a logger's output while the
// code under test may still be writing to it. It imports nothing of Relay's,
// so any package's tests can use it.
//
// It must not know what a log line means: tests decide what to look for.
package testlog
