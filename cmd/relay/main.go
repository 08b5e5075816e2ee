// Command relay is the Relay webhook relay: `relay serve` runs the proxy,
// `relay check` validates a config file, `relay sink` runs a receiver that
// prints what it gets, `relay version` prints the version.
package main

import (
	"context"
	"os"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
