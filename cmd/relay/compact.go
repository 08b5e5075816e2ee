package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store/bolt"
)

var helpCompact = cmdHelp{
	name:    "compact",
	summary: "shrink a stopped relay's embedded store file to its live data",
	usage:   []string{"relay compact [-config FILE] [-timeout D]"},
	notes: `Rewrites the embedded store's file with only its live pages and gives
the rest back to the disk: bbolt never shrinks its file, so a large backlog
leaves it large after it drains. The relay must be stopped; its lock on the
file is waited for up to -timeout. A Redis store gives memory back by itself.`,
	examples: []string{
		"relay compact -config relay.yaml",
	},
}

// runCompact is relay compact.
func runCompact(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpCompact, stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the store's lock (a running relay holds it)")
	if _, code, ok := parseArgs(fs, helpCompact, args, stdout, stderr); !ok {
		return code
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stderr, "compact", path, err)
		return 1
	}
	if cfg.Store.Embedded == nil {
		fmt.Fprintln(stderr, "relay compact: the config's store is not embedded; Redis gives memory back by itself")
		return 1
	}
	dir := cfg.Store.Embedded.Path
	res, err := bolt.Compact(dir, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "relay compact: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "compacted %s: %s -> %s\n", dir, mib(res.Before), mib(res.After))
	return 0
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
