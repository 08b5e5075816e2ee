package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/relaygw/relay/relay/state"
)

var helpDestinations = cmdHelp{
	name:    "destinations",
	summary: "show each destination's queue, dead letters, circuit and last error",
	usage:   []string{"relay destinations [--json]"},
	notes: adminNote + `
QUEUED counts pending deliveries (due, waiting for a retry, or in flight);
CIRCUIT is closed, open (paused after repeated failures) or half-open.`,
	examples: []string{"relay destinations", "relay destinations --json"},
}

func runDestinations(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpDestinations, stderr)
	client := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	if code, ok := parseNoArgs(fs, helpDestinations, args, stdout, stderr); !ok {
		return code
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "destinations", err, 2)
	}
	var states []state.Destination
	if _, err := c.do(ctx, http.MethodGet, "/api/destinations", nil, &states); err != nil {
		return fail(stderr, "destinations", err, 1)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(nonNilSlice(states))
		return 0
	}
	if len(states) == 0 {
		fmt.Fprintln(stdout, "no destinations configured")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tQUEUED\tDEAD\tIN FLIGHT\tCIRCUIT\tFAILURES\tLAST SUCCESS\tLAST ERROR")
	for _, s := range states {
		name := s.Name
		switch {
		case !s.Configured:
			name += " (removed)"
		case s.Agent != "":
			conn := "?"
			if s.AgentConnected != nil {
				conn = map[bool]string{true: "connected", false: "not connected"}[*s.AgentConnected]
			}
			name += " (agent " + s.Agent + ", " + conn + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", name, s.Queued, s.Dead, s.InFlight, orDash(s.Circuit),
			strconv.Itoa(s.ConsecutiveFailures), timeOrDash(s.LastSuccess), orDash(shorten(s.LastError, 60)))
	}
	tw.Flush()
	return 0
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
