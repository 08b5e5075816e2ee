package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

const usage = `relay — a webhook relay and forwarding proxy

Usage:
  relay serve   [-config FILE]   run the proxy (FILE: $RELAY_CONFIG, then relay.yaml)
  relay check   [-config FILE]   validate a config file
  relay sink    [-listen ADDR]   run a test receiver that prints every request
  relay try     [-config FILE] -webhook ID [-destination NAME] FILE
                                 show which routes a body matches and what each destination would be sent
  relay agent   -server URL -token T -name NAME [-ca FILE] [-insecure]
                                 deliver behind a firewall: dial out to the relay, POST to private URLs
  relay dlq     list|replay|delete  a running relay's dead-letter queue (relay dlq help)
  relay events  get|list         look up callbacks in a running relay (relay events help)
  relay reload  [-admin URL]     make a running relay reload its config file (as SIGHUP does)
  relay compact [-config FILE]   shrink a stopped relay's embedded store file to its live data
  relay version                  print the version
`

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "sink":
		return runSink(ctx, rest, stdout, stderr)
	case "try":
		return runTry(ctx, rest, stdout, stderr)
	case "agent":
		return runAgent(ctx, rest, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, rest, stdout, stderr)
	case "events":
		return runEvents(ctx, rest, stdout, stderr)
	case "reload":
		return runReload(ctx, rest, stdout, stderr)
	case "compact":
		return runCompact(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "relay %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "relay: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// configPath picks the config file: the flag, then $RELAY_CONFIG, then
// relay.yaml.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("RELAY_CONFIG"); p != "" {
		return p
	}
	return "relay.yaml"
}
