package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaygw/relay/relay/admin"
)

var helpEvents = cmdHelp{
	name:    "events",
	summary: "find callbacks in a running relay and show their deliveries and attempts",
	usage: []string{
		"relay events list [--mid MID] [--webhook-id ID] [--status S] [--since T] [--until T] [--limit N] [--json | -q]",
		"relay events get  ID [--json]",
		"relay events tail [--destination NAME] [--count N] [--json]",
	},
	notes: adminNote + "\nRun `relay events list -h` (get, tail) for a command's flags.",
	examples: []string{
		"relay events list --mid 1234-1333-XXXXX",
		"relay events get $(relay events list -q --mid 1234-1333-XXXXX)",
		"relay events list --status dead --since 2h",
		"relay events tail --destination acme-crm",
	},
}

var helpEventsList = cmdHelp{
	name:    "events list",
	summary: "list callbacks, newest first",
	usage:   []string{"relay events list [--mid MID] [--webhook-id ID] [--status S] [--since T] [--until T] [--limit N] [--json | -q]"},
	notes: `--mid matches the dedupe key (the mid by default); --status is parked,
pending, dead, discarded or delivered; --since and --until are a duration ago
(2h) or an RFC 3339 time.
` + adminNote,
	examples: []string{"relay events list --mid 1234-1333-XXXXX", "relay events list --webhook-id 1001 --status dead -q"},
}

var helpEventsGet = cmdHelp{
	name:     "events get",
	summary:  "show one callback: its route, body, deliveries and every attempt",
	usage:    []string{"relay events get ID [--json]"},
	notes:    adminNote,
	examples: []string{"relay events get evt_01K...", "relay events get evt_01K... --json"},
}

var helpEventsTail = cmdHelp{
	name:    "events tail",
	summary: "print callbacks and delivery attempts as they happen",
	usage:   []string{"relay events tail [--destination NAME] [--count N] [--json]"},
	notes: `Runs until interrupted, or until --count items.
` + adminNote,
	examples: []string{"relay events tail", "relay events tail --destination acme-crm --json"},
}

// runEvents runs `relay events get|list|tail`.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup(ctx, helpEvents, []subcommand{
		{helpEventsList, []string{"ls", "find"}, runEventsList},
		{helpEventsGet, []string{"show"}, runEventsGet},
		{helpEventsTail, []string{"follow"}, runEventsTail},
	}, args, stdout, stderr)
}

func runEventsGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpEventsGet, stderr)
	client := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a summary")
	pos, code, ok := parseArgs(fs, helpEventsGet, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, helpEventsGet, "name one event ID (find it with: relay events list --mid MID)")
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "events get", err, 2)
	}
	id := pos[0]
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, "/api/events/"+url.PathEscape(id), nil, &raw); err != nil {
		if errors.Is(err, errNotFound) {
			err = fmt.Errorf("no event %s (events expire after the store's retention)", id)
		}
		return fail(stderr, "events get", err, 1)
	}
	if *asJSON {
		stdout.Write(raw)
		return 0
	}
	var ev admin.EventView
	if err := json.Unmarshal(raw, &ev); err != nil {
		return fail(stderr, "events get", err, 1)
	}
	printEvent(stdout, ev)
	return 0
}

// printEvent writes an event for a person: its fields, its body, then each
// delivery with its attempts.
func printEvent(w io.Writer, ev admin.EventView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "event\t%s\n", ev.ID)
	fmt.Fprintf(tw, "webhook_id\t%s\n", ev.WebhookID)
	if ev.DedupeKey != "" {
		fmt.Fprintf(tw, "dedupe key\t%s\n", ev.DedupeKey)
	}
	fmt.Fprintf(tw, "received\t%s\n", ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "status\t%s\n", ev.Status)
	route := "parked (matched no route)"
	if !ev.Route.Parked {
		route = strings.Join(ev.Route.Destinations, ", ")
	}
	fmt.Fprintf(tw, "route\t%s -> %s\n", ev.Route.WebhookID, route)
	fmt.Fprintf(tw, "body\t%d bytes, %s, shown as %s\n", ev.BodyBytes, orDash(ev.ContentType), ev.Encoding)
	tw.Flush()
	fmt.Fprintln(w, ev.Body)
	for _, d := range ev.Deliveries {
		fmt.Fprintf(w, "\ndelivery %s to %s: %s after %s\n", d.ID, d.Destination, d.State, plural(d.Attempts, "attempt"))
		if len(d.AttemptLog) == 0 {
			fmt.Fprintf(w, "  no attempt yet; due %s\n", d.DueAt.UTC().Format(time.RFC3339))
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tAT\tSTATUS\tTOOK\tERROR")
		for _, a := range d.AttemptLog {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", a.N, a.At.UTC().Format(time.RFC3339), statusText(a.Status),
				time.Duration(a.DurationMS*float64(time.Millisecond)).Round(time.Millisecond), shorten(a.Error, 80))
		}
		tw.Flush()
	}
}

func runEventsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpEventsList, stderr)
	client := adminFlags(fs)
	mid := fs.String("mid", "", "events with this dedupe key (the mid by default)")
	webhook := fs.String("webhook-id", "", "events of this webhook_id")
	status := fs.String("status", "", "events in this state: parked, pending, dead, discarded, delivered")
	since := fs.String("since", "", "events received since: a duration ago (2h) or an RFC 3339 time")
	until := fs.String("until", "", "events received before: a duration ago (2h) or an RFC 3339 time")
	limit := fs.Int("limit", 50, "list at most N")
	asJSON := fs.Bool("json", false, "print the JSON list instead of a table")
	quiet := fs.Bool("q", false, "print only the event ids, one per line")
	pos, code, ok := parseArgs(fs, helpEventsList, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, helpEventsList, fmt.Sprintf("unexpected argument %q (to find by mid: --mid MID)", pos[0]))
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "events list", err, 2)
	}
	q := url.Values{}
	for k, v := range map[string]string{"mid": *mid, "webhook_id": *webhook, "status": *status, "since": *since, "until": *until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	items, err := listAll[admin.EventSummary](ctx, c, "/api/events", q, *limit)
	if err != nil {
		return fail(stderr, "events list", err, 1)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(nonNilSlice(items))
		return 0
	}
	if *quiet {
		for _, ev := range items {
			fmt.Fprintln(stdout, ev.ID)
		}
		return 0
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "no matching events")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tRECEIVED\tWEBHOOK\tMID\tSTATUS\tDELIVERIES")
	for _, ev := range items {
		var ds []string
		for _, d := range ev.Deliveries {
			ds = append(ds, d.Destination+":"+string(d.State))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.ID, ev.ReceivedAt.UTC().Format(time.RFC3339), ev.WebhookID,
			orDash(ev.DedupeKey), ev.Status, orDash(strings.Join(ds, " ")))
	}
	tw.Flush()
	return 0
}

func statusText(code int) string {
	if code == 0 {
		return "-"
	}
	return strconv.Itoa(code)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
