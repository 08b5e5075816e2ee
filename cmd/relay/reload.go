package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/relaygw/relay/relay/admin"
)

// runReload asks a running relay to reload its config file (what SIGHUP
// does) and prints what changed, or every problem of a refused file.
func runReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := adminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "reload", err, 2)
	}
	var rep admin.ReloadReport
	if _, err := c.do(ctx, http.MethodPost, "/api/reload", nil, &rep); err != nil {
		return fail(stderr, "reload", err, 1)
	}
	fmt.Fprintf(stdout, "reloaded %s: %d routes, %d destinations\n", rep.File, rep.Routes, rep.Destinations)
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", rep.Added}, {"changed", rep.Changed}, {"removed", rep.Removed}} {
		if len(l.names) > 0 {
			fmt.Fprintf(stdout, "  %s: %s\n", l.what, strings.Join(l.names, ", "))
		}
	}
	for dest, n := range rep.Stranded {
		fmt.Fprintf(stdout, "  %s was removed with %d deliveries queued; they stay queued until it is configured again\n", dest, n)
	}
	if len(rep.RestartRequired) > 0 {
		fmt.Fprintf(stdout, "  changed but applied only after a restart: %s\n", strings.Join(rep.RestartRequired, ", "))
	}
	return 0
}
