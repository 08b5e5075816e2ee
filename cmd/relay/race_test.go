//go:build race

package main

// raceEnabled is true when the tests were built with -race, so the relay
// binary they run is built with it too.
const raceEnabled = true
