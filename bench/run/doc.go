// Command run is `make bench`: it builds Relay and the ceilings
// (bench/ceiling), starts its own redis-server (appendonly, everysec) on a
// free port for every Redis-backed server, drives each with bench/load, and
// prints one Markdown table with every row side by side: Relay's figure, the
// ceiling's and the ratio, all from this one run.
//
//	go run ./bench/run                 the full run (under 10 minutes on 2 cores)
//	BENCH_QUICK=1 go run ./bench/run   smaller backlogs and shorter runs, to try it out
//	BENCH_SCALE=1 go run ./bench/run   make bench-scale: only one, two and four relay
//	                                   processes on one Redis and on a 3-master cluster
//
// The scale run (scale.go) starts a fresh store for each count of relays,
// splits the closed loop over them, and times it until every callback is
// delivered; it needs redis-cli to join the cluster.
//
// Progress goes to stderr, the table to stdout. It is a benchmark tool, not
// part of Relay.
//
// It is a benchmark tool, not part of Relay: it drives the relay only
// through its binary, its config file and its HTTP listeners, never
// through Relay's packages.
package main
