// Command relay is the Relay webhook relay: `relay serve` runs the proxy,
// `relay check` validates a config file, the admin commands (dlq, events,
// parked, destinations, reload, health) talk to a running relay, `relay
// send` and `relay sink` help try a route, `relay agent` delivers from
// behind a firewall. `relay help` lists them all.
package main

import (
	"context"
	"os"
)

// Set at build time (make build, make dist) with
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc -X main.date=2026-01-02T03:04:05Z";
// left empty, they come from the build info the Go toolchain embeds.
var version, commit, date string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
