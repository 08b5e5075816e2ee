package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store/bolt"
)

// runCompact rewrites the embedded store's file with only its live pages
// and gives the rest back to the disk (bbolt never shrinks its file). The
// relay must be stopped: the file's lock is waited for up to -timeout.
func runCompact(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the store's lock (a running relay holds it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stderr, path, err)
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
