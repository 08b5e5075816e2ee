package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/relaygw/relay/relay/admin"
)

var helpParked = cmdHelp{
	name:    "parked",
	summary: "list or replay callbacks that matched no route (unmatched: park)",
	usage: []string{
		"relay parked list   [--limit N] [--json | -q]",
		"relay parked replay [--webhook-id ID | ID...]",
	},
	notes: adminNote + `
replay routes parked callbacks again under the running routes (add a route,
relay reload, then replay); those that still match nothing stay parked.`,
	examples: []string{"relay parked list", "relay parked replay --webhook-id 1003", "relay parked replay"},
}

var helpParkedList = cmdHelp{
	name:     "parked list",
	summary:  "list parked callbacks, oldest first",
	usage:    []string{"relay parked list [--limit N] [--json | -q]"},
	notes:    adminNote,
	examples: []string{"relay parked list", "relay parked list -q"},
}

var helpParkedReplay = cmdHelp{
	name:     "parked replay",
	summary:  "route parked callbacks again under the running routes",
	usage:    []string{"relay parked replay [--webhook-id ID]", "relay parked replay ID..."},
	notes:    adminNote + "\nWithout arguments, every parked callback is routed again.",
	examples: []string{"relay parked replay", "relay parked replay --webhook-id 1003", "relay parked replay evt_01K..."},
}

func runParked(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup(ctx, helpParked, []subcommand{
		{helpParkedList, []string{"ls"}, runParkedList},
		{helpParkedReplay, nil, runParkedReplay},
	}, args, stdout, stderr)
}

func runParkedList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpParkedList, stderr)
	client := adminFlags(fs)
	limit := fs.Int("limit", 0, "list at most N (0: all)")
	asJSON := fs.Bool("json", false, "print the JSON list (bodies included) instead of a table")
	quiet := fs.Bool("q", false, "print only the event ids, one per line")
	if code, ok := parseNoArgs(fs, helpParkedList, args, stdout, stderr); !ok {
		return code
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "parked list", err, 2)
	}
	items, err := listAll[admin.ParkedView](ctx, c, "/api/parked", url.Values{}, *limit)
	if err != nil {
		return fail(stderr, "parked list", err, 1)
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(nonNilSlice(items))
		return 0
	case *quiet:
		for _, ev := range items {
			fmt.Fprintln(stdout, ev.ID)
		}
		return 0
	case len(items) == 0:
		fmt.Fprintln(stdout, "no parked callbacks")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tRECEIVED\tWEBHOOK\tMID\tBYTES")
	for _, ev := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", ev.ID, ev.ReceivedAt.UTC().Format(time.RFC3339), ev.WebhookID, orDash(ev.DedupeKey), ev.BodyBytes)
	}
	tw.Flush()
	return 0
}

func runParkedReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpParkedReplay, stderr)
	client := adminFlags(fs)
	webhook := fs.String("webhook-id", "", "replay only the parked callbacks of this webhook_id")
	ids, code, ok := parseArgs(fs, helpParkedReplay, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(ids) > 0 && *webhook != "" {
		return usageError(stderr, helpParkedReplay, "pass event IDs or --webhook-id, not both")
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "parked replay", err, 2)
	}
	var total admin.ReplayResult
	if len(ids) == 0 {
		q := url.Values{}
		if *webhook != "" {
			q.Set("webhook_id", *webhook)
		}
		if _, err := c.do(ctx, http.MethodPost, "/api/parked/replay", q, &total); err != nil {
			return fail(stderr, "parked replay", err, 1)
		}
	}
	for _, id := range ids {
		var res admin.ReplayResult
		if _, err := c.do(ctx, http.MethodPost, "/api/parked/"+url.PathEscape(id)+"/replay", nil, &res); err != nil {
			return fail(stderr, "parked replay", fmt.Errorf("%s: %w", id, err), 1)
		}
		total.Replayed += res.Replayed
		total.Deliveries += res.Deliveries
		total.StillParked += res.StillParked
		total.Skipped += res.Skipped
		total.Failed = append(total.Failed, res.Failed...)
	}
	fmt.Fprintf(stdout, "routed %s (%d deliveries queued)", plural(total.Replayed, "parked callback"), total.Deliveries)
	if total.StillParked > 0 {
		fmt.Fprintf(stdout, "; %d still match no route and stay parked", total.StillParked)
	}
	fmt.Fprintln(stdout)
	for _, f := range total.Failed {
		fmt.Fprintf(stderr, "%s: %s\n", f.ID, f.Error)
	}
	if len(total.Failed) > 0 {
		return 1
	}
	return 0
}
