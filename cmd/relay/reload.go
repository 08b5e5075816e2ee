package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/relaygw/relay/relay/admin"
)

var helpReload = cmdHelp{
	name:    "reload",
	summary: "make a running relay reload its config file (as SIGHUP does)",
	usage:   []string{"relay reload [-admin URL]"},
	notes: adminNote + `
The relay reads the file it started with, and expands ${VAR} from its own
environment (the one relay serve started with), not from this shell's. A file
with any problem is refused whole and the running config stays.`,
	examples: []string{"relay check -config relay.yaml && relay reload"},
}

// runReload asks a running relay to reload its config file (what SIGHUP
// does) and prints what changed, or every problem of a refused file.
func runReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpReload, stderr)
	client := adminFlags(fs)
	pos, code, ok := parseArgs(fs, helpReload, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, helpReload, fmt.Sprintf("unexpected argument %q (the relay reloads the file it started with)", pos[0]))
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "reload", err, 2)
	}
	var rep admin.ReloadReport
	if _, err := c.do(ctx, http.MethodPost, "/api/reload", nil, &rep); err != nil {
		if strings.Contains(err.Error(), "${") {
			err = fmt.Errorf("%w\n(the relay expands ${VAR} from its own environment, the one `relay serve` started with, not from this shell's: set the variable there and restart it, or give it a default with ${VAR:-default})", err)
		}
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
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "  warning: %s\n", w)
	}
	if len(rep.RestartRequired) > 0 {
		fmt.Fprintf(stdout, "  changed but applied only after a restart: %s\n", strings.Join(rep.RestartRequired, ", "))
	}
	return 0
}
