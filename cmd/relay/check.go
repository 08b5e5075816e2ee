package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/relaygw/relay/config"
)

// runCheck validates a config file: one summary line per route and exit 0,
// or one FILE:LINE: message line per problem and exit 1.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stdout, path, err)
		return 1
	}
	for _, line := range cfg.RouteSummaries() {
		fmt.Fprintln(stdout, line)
	}
	return 0
}
