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
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/state"
)

const adminNote = `Talks to a running relay's admin API: -admin URL (default $RELAY_ADMIN_URL,
else ` + defaultAdminURL + `); the bearer token comes from $RELAY_ADMIN_TOKEN.`

var helpDLQ = cmdHelp{
	name:    "dlq",
	summary: "list, replay or delete a running relay's dead-lettered deliveries",
	usage: []string{
		"relay dlq list   [--destination NAME] [--limit N] [--json | -q]",
		"relay dlq replay [--destination NAME] [--all | ID...]",
		"relay dlq delete ID...",
	},
	notes: adminNote + "\nRun `relay dlq list -h` (replay, delete) for a command's flags.",
	examples: []string{
		"relay dlq list --destination acme-crm",
		"relay dlq replay --destination acme-crm",
		"relay dlq replay --all",
		"relay dlq replay $(relay dlq list -q --destination acme-crm)",
	},
}

var helpDLQList = cmdHelp{
	name:     "dlq list",
	summary:  "list dead-lettered deliveries, oldest first",
	usage:    []string{"relay dlq list [--destination NAME] [--limit N] [--json | -q]"},
	notes:    adminNote,
	examples: []string{"relay dlq list", "relay dlq list --destination acme-crm --json", "relay dlq list -q"},
}

var helpDLQReplay = cmdHelp{
	name:    "dlq replay",
	summary: "put dead-lettered deliveries back in their queue, attempts reset",
	usage:   []string{"relay dlq replay --destination NAME", "relay dlq replay --all", "relay dlq replay ID..."},
	notes: adminNote + `
A delivery leaves the DLQ once, so replaying twice never delivers twice. On a
terminal a progress bar shows; piped, one line per delivery.`,
	examples: []string{"relay dlq replay --destination acme-crm", "relay dlq replay --all", "relay dlq replay dlv_01K..."},
}

var helpDLQDelete = cmdHelp{
	name:     "dlq delete",
	summary:  "give up on dead-lettered deliveries (they show as discarded)",
	usage:    []string{"relay dlq delete ID..."},
	notes:    adminNote,
	examples: []string{"relay dlq delete dlv_01K...", "relay dlq delete $(relay dlq list -q --destination old-crm)"},
}

// runDLQ runs `relay dlq list|replay|delete`.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup(ctx, helpDLQ, []subcommand{
		{helpDLQList, []string{"ls"}, runDLQList},
		{helpDLQReplay, nil, runDLQReplay},
		{helpDLQDelete, []string{"rm"}, runDLQDelete},
	}, args, stdout, stderr)
}

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpDLQList, stderr)
	client := adminFlags(fs)
	dest := fs.String("destination", "", "list only this destination's dead deliveries")
	limit := fs.Int("limit", 0, "list at most N (0: all)")
	asJSON := fs.Bool("json", false, "print the JSON list instead of a table")
	quiet := fs.Bool("q", false, "print only the delivery ids, one per line")
	if code, ok := parseNoArgs(fs, helpDLQList, args, stdout, stderr); !ok {
		return code
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "dlq list", err, 2)
	}
	q := url.Values{}
	if *dest != "" {
		q.Set("destination", *dest)
	}
	items, err := listAll[admin.DeliveryView](ctx, c, "/api/dlq", q, *limit)
	if err != nil {
		return fail(stderr, "dlq list", err, 1)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(nonNilSlice(items))
		return 0
	}
	if *quiet {
		for _, d := range items {
			fmt.Fprintln(stdout, d.ID)
		}
		return 0
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "the dead-letter queue is empty"+forDest(*dest))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDESTINATION\tEVENT\tATTEMPTS\tLAST STATUS\tDEAD SINCE\tLAST ERROR")
	for _, d := range items {
		status := "-"
		if d.LastStatus != 0 {
			status = strconv.Itoa(d.LastStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Destination, d.EventID, d.Attempts, status,
			d.UpdatedAt.UTC().Format(time.RFC3339), shorten(d.LastError, 70))
	}
	tw.Flush()
	return 0
}

func runDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpDLQReplay, stderr)
	client := adminFlags(fs)
	dest := fs.String("destination", "", "replay this destination's dead deliveries")
	all := fs.Bool("all", false, "replay every dead delivery (of --destination, if given)")
	ids, code, ok := parseArgs(fs, helpDLQReplay, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(ids) > 0 && (*all || *dest != ""):
		return usageError(stderr, helpDLQReplay, "pass delivery IDs, or --all / --destination NAME, not both")
	case len(ids) == 0 && !*all && *dest == "":
		return usageError(stderr, helpDLQReplay, "name the delivery IDs to replay, or pass --all (--destination NAME for one destination's)")
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "dlq replay", err, 2)
	}
	explicit := len(ids) > 0
	replaying := map[string]bool{} // the destinations of the listed deliveries
	if !explicit {
		q := url.Values{}
		if *dest != "" {
			q.Set("destination", *dest)
		}
		items, err := listAll[admin.DeliveryView](ctx, c, "/api/dlq", q, 0)
		if err != nil {
			return fail(stderr, "dlq replay", err, 1)
		}
		if len(items) == 0 {
			fmt.Fprintln(stdout, "nothing to replay: the dead-letter queue is empty"+forDest(*dest))
			return 0
		}
		for _, d := range items {
			ids = append(ids, d.ID)
			replaying[d.Destination] = true
		}
	}
	// Named ids do not say their destination: only a listing's replay
	// reports the open circuits it probes.
	open := openCircuits(ctx, c, replaying)
	code = replayIDs(ctx, c, ids, explicit, isTerminal(stdout), stdout, stderr)
	for _, name := range open {
		fmt.Fprintf(stdout, "destination %s: circuit open; its first replayed delivery is sent now as the probe\n", name)
	}
	return code
}

// openCircuits names the destinations among dests whose circuit is open,
// so a replay can say that it is sent as their probe. Nothing when the
// states cannot be read: the replay does not depend on it.
func openCircuits(ctx context.Context, c *adminClient, dests map[string]bool) []string {
	if len(dests) == 0 {
		return nil
	}
	var states []state.Destination
	if _, err := c.do(ctx, http.MethodGet, "/api/destinations", nil, &states); err != nil {
		return nil
	}
	var open []string
	for _, s := range states {
		if s.Circuit == "open" && dests[s.Name] {
			open = append(open, s.Name)
		}
	}
	return open
}

// replayIDs replays each id, with a progress bar when progress is set (a
// terminal) and one line per delivery otherwise. An id that is no longer in
// the DLQ is a failure when the user named it, and skipped when it came from
// a listing (replayed by someone else meanwhile). Connection and token
// errors stop at once.
func replayIDs(ctx context.Context, c *adminClient, ids []string, explicit, progress bool, stdout, stderr io.Writer) int {
	var bar *progressbar.ProgressBar
	if progress && len(ids) > 1 {
		bar = progressbar.NewOptions(len(ids), progressbar.OptionSetWriter(stdout),
			progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionOnCompletion(func() { fmt.Fprintln(stdout) }))
	}
	replayed, skipped, failed := 0, 0, 0
	var problems []string
	for _, id := range ids {
		_, err := c.do(ctx, http.MethodPost, "/api/dlq/"+url.PathEscape(id)+"/replay", nil, nil)
		var line string
		switch {
		case err == nil:
			replayed++
			line = "replayed " + id
		case errors.Is(err, errNotFound) && !explicit:
			skipped++
			line = id + ": skipped, no longer in the dead-letter queue"
		case errors.Is(err, errNotFound):
			failed++
			line = id + ": not in the dead-letter queue (unknown, already replayed or deleted)"
		default:
			if bar != nil {
				_ = bar.Exit()
				fmt.Fprintln(stdout)
			}
			return fail(stderr, "dlq replay", fmt.Errorf("%s: %w (replayed %d before this)", id, err, replayed), 1)
		}
		if bar != nil {
			_ = bar.Add(1)
			if err != nil && explicit {
				problems = append(problems, line)
			}
			continue
		}
		fmt.Fprintln(stdout, line)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	fmt.Fprintf(stdout, "replayed %d of %d deliveries", replayed, len(ids))
	if skipped > 0 {
		fmt.Fprintf(stdout, " (%d skipped)", skipped)
	}
	fmt.Fprintln(stdout)
	if failed > 0 {
		return 1
	}
	return 0
}

func runDLQDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpDLQDelete, stderr)
	client := adminFlags(fs)
	ids, code, ok := parseArgs(fs, helpDLQDelete, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(ids) == 0 {
		return usageError(stderr, helpDLQDelete, "name the delivery IDs to delete from the dead-letter queue")
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "dlq delete", err, 2)
	}
	code = 0
	for _, id := range ids {
		_, err := c.do(ctx, http.MethodDelete, "/api/dlq/"+url.PathEscape(id), nil, nil)
		switch {
		case err == nil:
			fmt.Fprintln(stdout, "deleted "+id)
		case errors.Is(err, errNotFound):
			fmt.Fprintln(stderr, id+": not in the dead-letter queue")
			code = 1
		default:
			return fail(stderr, "dlq delete", err, 1)
		}
	}
	return code
}

// fail prints err as a relay error line and returns code.
func fail(w io.Writer, cmd string, err error, code int) int {
	fmt.Fprintf(w, "relay %s: %v\n", cmd, err)
	return code
}

func forDest(dest string) string {
	if dest == "" {
		return ""
	}
	return " for " + dest
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
