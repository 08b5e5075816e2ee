package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one `relay CMD`.
type command struct {
	help cmdHelp
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order `relay help` shows them.
func commands() []command {
	return []command{
		{helpServe, runServe},
		{helpCheck, func(_ context.Context, a []string, o, e io.Writer) int { return runCheck(a, o, e) }},
		{helpSend, runSend},
		{helpSink, runSink},
		{helpTry, runTry},
		{helpHealth, runHealth},
		{helpDestinations, runDestinations},
		{helpDLQ, runDLQ},
		{helpEvents, runEvents},
		{helpParked, runParked},
		{helpReload, runReload},
		{helpCompact, runCompact},
		{helpAgent, runAgent},
		{helpVersion, runVersion},
	}
}

// usage is the overview `relay help` prints.
func usage(w io.Writer) {
	fmt.Fprint(w, "relay — a webhook relay and forwarding proxy\n\nUsage:\n  relay COMMAND [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.help.name, c.help.summary)
	}
	fmt.Fprint(w, "\nRun `relay COMMAND -h` for a command's usage, flags and examples.\n")
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-v", "-version", "--version":
		name = "version"
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "-h" {
			return run(ctx, []string{rest[0], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	var names []string
	for _, c := range commands() {
		if c.help.name == name {
			return c.run(ctx, rest, stdout, stderr)
		}
		names = append(names, c.help.name)
	}
	fmt.Fprintf(stderr, "relay: unknown command %q", name)
	if s := suggest(name, append(names, "help")); s != "" {
		fmt.Fprintf(stderr, "; did you mean %q?", s)
	}
	fmt.Fprint(stderr, "\nrun `relay help` for the list of commands\n")
	return 2
}

// suggest returns the name in names nearest to typed (a prefix of it, or at
// most two edits away), or "".
func suggest(typed string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(typed, n)
		if len(typed) >= 2 && strings.HasPrefix(n, typed) {
			d = 1
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// subcommand is one of a group's commands (`relay dlq list`).
type subcommand struct {
	help    cmdHelp
	aliases []string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// runGroup dispatches `relay GROUP SUB ...`, accepting -admin before SUB.
func runGroup(ctx context.Context, group cmdHelp, subs []subcommand, args []string, stdout, stderr io.Writer) int {
	args = hoistAdmin(args)
	if len(args) == 0 {
		group.print(stderr, nil)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		group.print(stdout, nil)
		return 0
	}
	var names []string
	for _, s := range subs {
		short := strings.TrimPrefix(s.help.name, group.name+" ")
		if args[0] == short || contains(s.aliases, args[0]) {
			return s.run(ctx, args[1:], stdout, stderr)
		}
		names = append(names, short)
	}
	fmt.Fprintf(stderr, "relay %s: unknown command %q", group.name, args[0])
	if s := suggest(args[0], names); s != "" {
		fmt.Fprintf(stderr, "; did you mean %q?", s)
	}
	fmt.Fprintf(stderr, "\nrun `relay %s -h` for usage\n", group.name)
	return 2
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var helpVersion = cmdHelp{
	name:     "version",
	summary:  "print the version, commit, build date and Go version",
	usage:    []string{"relay version", "relay --version | -v"},
	examples: []string{"relay version"},
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpVersion, stderr)
	if code, ok := parseNoArgs(fs, helpVersion, args, stdout, stderr); !ok {
		return code
	}
	fmt.Fprint(stdout, currentVersion())
	return 0
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
