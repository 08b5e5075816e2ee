package main

import (
	"fmt"
	"io"

	"github.com/relaygw/relay/config"
)

var helpCheck = cmdHelp{
	name:    "check",
	summary: "validate a config file without starting anything",
	usage:   []string{"relay check [-config FILE]", "relay check FILE"},
	notes: `Prints one line per route and exits 0, or one FILE:LINE: message line per
problem and exits 1. Warnings (an unset ${VAR} without a default) go to
stderr and do not change the exit code. FILE defaults to $RELAY_CONFIG, then
relay.yaml. Variables are read from this shell's environment; a running relay
reads its own.`,
	examples: []string{"relay check -config relay.yaml", "RELAY_ADMIN_TOKEN=x relay check -config /etc/relay/relay.yaml"},
}

// runCheck validates a config file: one summary line per route and exit 0,
// or one FILE:LINE: message line per problem and exit 1.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpCheck, stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	pos, code, ok := parseArgs(fs, helpCheck, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 1 || (len(pos) == 1 && *file != "") {
		return usageError(stderr, helpCheck, fmt.Sprintf("unexpected argument %q", pos[len(pos)-1]))
	}
	if len(pos) == 1 {
		*file = pos[0]
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stdout, "check", path, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w.Error())
	}
	for _, line := range cfg.RouteSummaries() {
		fmt.Fprintln(stdout, line)
	}
	return 0
}
