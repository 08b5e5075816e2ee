package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/transform"
)

var helpTry = cmdHelp{
	name:    "try",
	summary: "show where a callback body would go and what each destination would be sent",
	usage:   []string{"relay try [-config FILE] -webhook ID [-destination NAME] [-content-type TYPE] FILE"},
	notes: `Reads FILE (or standard input for "-"), routes it as ingest would for
webhook ID (match fields, then jq filters), and prints each route's verdict
and, for every matched destination (or only NAME), the body and the headers
its transform computes. Nothing is sent and no relay needs to run.
Without -content-type the body is taken as a callback that came with none:
read as JSON when it looks like an object, and forwarded untransformed as
application/octet-stream, as the relay would. Configured header values and
signatures are not printed.

Exit status: 0 when everything ran, 1 when the config is invalid, FILE
cannot be read, NAME is unknown, or a filter or transform fails.`,
	examples: []string{
		"relay try -config relay.yaml -webhook 1001 body.json",
		"relay try -config relay.yaml -webhook 1001 -destination acme-crm body.json",
		"curl -s ... | relay try -webhook 1001 -content-type application/x-www-form-urlencoded -",
	},
}

// runTry is relay try: a dry run of routing and transforms on one body.
func runTry(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpTry, stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	webhook := fs.String("webhook", "", "webhook_id the body arrives for")
	dest := fs.String("destination", "", "show only this destination")
	ct := fs.String("content-type", "", "the body's Content-Type, as the provider sends it (default: none)")
	pos, code, ok := parseArgs(fs, helpTry, args, stdout, stderr)
	if !ok {
		return code
	}
	if *webhook == "" || len(pos) != 1 {
		return usageError(stderr, helpTry, "need -webhook ID and one body FILE")
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stderr, "try", path, err)
		return 1
	}
	body, err := readBodyFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "relay try: %v\n", err)
		return 1
	}
	t := tryRun{cfg: cfg, out: stdout, ct: *ct, body: body, limits: transform.DefaultLimits()}
	return t.run(ctx, *webhook, *dest)
}

func readBodyFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// tryRun is one relay try.
type tryRun struct {
	cfg    *config.Config
	out    io.Writer
	ct     string
	body   []byte
	limits transform.Limits
	failed bool
}

func (t *tryRun) run(ctx context.Context, webhook, only string) int {
	if only != "" {
		if _, ok := t.cfg.Destination(only); !ok {
			fmt.Fprintf(t.out, "relay try: unknown destination %q\n", only)
			return 1
		}
	}
	kind := ingest.Kind(t.ct, t.body)
	fmt.Fprintf(t.out, "body: %d bytes, read as %s\n", len(t.body), kind)
	dests := t.routes(ctx, webhook, kind)
	show := dests
	if only != "" {
		if !slices.Contains(dests, only) {
			fmt.Fprintf(t.out, "note: no route sends this body to %q; showing what it would be sent\n", only)
		}
		show = []string{only}
	}
	for _, name := range show {
		d, _ := t.cfg.Destination(name)
		t.destination(ctx, d)
	}
	if t.failed {
		return 1
	}
	return 0
}

// routes prints each route of webhook's verdict and returns the matched
// destinations in delivery order.
func (t *tryRun) routes(ctx context.Context, webhook string, kind ingest.BodyKind) []string {
	table, err := route.Compile(t.cfg.Routes)
	if err != nil {
		fmt.Fprintf(t.out, "relay try: %v\n", err)
		t.failed = true
	}
	fields, ferr := ingest.Extract(kind, t.body)
	if ferr != nil && table.NeedsBody(webhook) {
		fmt.Fprintf(t.out, "body: unreadable for match fields: %v\n", ferr)
	}
	verdicts := table.Explain(ctx, webhook, fields, func() (any, error) { return ingest.Value(kind, t.body) })
	if len(verdicts) == 0 {
		fmt.Fprintf(t.out, "no route has webhook_id %q\n", webhook)
	}
	summaries := t.cfg.RouteSummaries()
	for _, v := range verdicts {
		r := t.cfg.Routes[v.Index]
		fmt.Fprintf(t.out, "route %d (%s:%d) %s: ", v.Index+1, t.cfg.File, r.Line, summaries[v.Index])
		switch {
		case v.Matched:
			fmt.Fprintln(t.out, "matched")
		case !v.Fields:
			fmt.Fprintln(t.out, "not matched: a match field differs")
		case v.Err != nil:
			fmt.Fprintf(t.out, "not matched: %v\n", v.Err)
			t.failed = true
		default:
			fmt.Fprintln(t.out, "not matched: the filter did not yield true")
		}
	}
	dests := table.MatchInput(ctx, webhook, fields, func() (any, error) { return ingest.Value(kind, t.body) })
	if len(dests) == 0 {
		fmt.Fprintf(t.out, "destinations: none; ingest would %s the event\n", t.cfg.Ingest.Unmatched)
	} else {
		fmt.Fprintf(t.out, "destinations: %s\n", strings.Join(dests, ", "))
	}
	return dests
}

// destination prints what d would be sent: the headers a transform sets
// (configured values stay hidden: they are often keys) and the body.
func (t *tryRun) destination(ctx context.Context, d config.Destination) {
	ct := t.ct
	body := t.body
	var computed map[string]string
	how := "original bytes"
	if d.Transform != nil {
		how = "transformed"
		tr, err := transform.New(*d.Transform)
		if err == nil {
			var out transform.Output
			out, err = transform.Run(ctx, tr, t.ct, t.body, t.limits)
			body, ct = out.Sent(body, ct)
			computed = out.Header
		}
		if err != nil {
			fmt.Fprintf(t.out, "\n=== %s: %v\n    (relay would dead-letter this delivery)\n", d.Name, err)
			t.failed = true
			return
		}
	}
	fmt.Fprintf(t.out, "\n=== %s (%s)\n", d.Name, how)
	if ct == "" {
		ct = "application/octet-stream"
	}
	fmt.Fprintf(t.out, "Content-Type: %s\n", ct)
	for _, name := range slices.Sorted(maps.Keys(computed)) {
		fmt.Fprintf(t.out, "%s: %s\n", name, computed[name])
	}
	var hidden []string
	for name := range d.Headers {
		hidden = append(hidden, name)
	}
	if d.SigningSecret != "" {
		hidden = append(hidden, "webhook-signature (over this body)")
	}
	if len(hidden) > 0 {
		slices.Sort(hidden)
		fmt.Fprintf(t.out, "(also sent, not shown: %s)\n", strings.Join(hidden, ", "))
	}
	fmt.Fprintf(t.out, "\n%s\n", strings.TrimRight(string(body), "\n"))
}
