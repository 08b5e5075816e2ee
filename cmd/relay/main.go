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
