package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/transform"
)

// Table is the routing table compiled from the configured routes. The zero
// value and a nil *Table route nothing. A Table is immutable after New and
// safe for concurrent use.
type Table struct {
	byWebhook map[string]*webhook
	limits    transform.Limits
	log       *slog.Logger // filter failures; nil: not logged
}

// webhook holds the compiled routes of one webhook_id in config order.
type webhook struct {
	routes    []route
	needsBody bool
	filters   bool // some route has a filter
	maxDests  int  // sum of the routes' fan-outs, to size Match's result once
}

type route struct {
	match  []matcher // sorted by field, so matching is deterministic
	filter *transform.Expr
	// broken is a filter that did not compile (New only): the route
	// matches nothing.
	broken bool
	to     []string
	index  int // position in the configuration, from 0
}

type matcher struct {
	field, value string
}

// New compiles routes into a Table. It copies what it keeps, so later changes
// to routes do not affect the Table. It does not validate: the config package
// refuses routes without a webhook_id or with unknown destinations first.
// A route whose filter does not compile matches nothing; Compile reports it
// instead.
func New(routes []config.Route) *Table {
	t, _ := Compile(routes)
	return t
}

// WithLog makes the table log every filter that fails while routing (a jq
// error, the time limit, a body jq cannot read): such a route does not
// match, and the operator should know why. Call it before the table is
// shared; it returns t.
func (t *Table) WithLog(log *slog.Logger) *Table {
	if t != nil {
		t.log = log
	}
	return t
}

// Compile is New that also reports filters that do not compile (the config
// package refuses them first, so this is a second line of defence).
func Compile(routes []config.Route) (*Table, error) {
	t := &Table{byWebhook: make(map[string]*webhook, len(routes)), limits: transform.DefaultLimits()}
	var errs []error
	for i, r := range routes {
		w := t.byWebhook[r.WebhookID]
		if w == nil {
			w = &webhook{}
			t.byWebhook[r.WebhookID] = w
		}
		c, err := compile(r)
		c.index = i
		if err != nil {
			errs = append(errs, fmt.Errorf("route %d: filter: %w", i+1, err))
		}
		w.routes = append(w.routes, c)
		w.maxDests += len(r.To)
		if len(r.Match) > 0 || r.Filter != "" {
			w.needsBody = true
		}
		if r.Filter != "" {
			w.filters = true
		}
	}
	if len(errs) > 0 {
		return t, fmt.Errorf("route: %w", errors.Join(errs...))
	}
	return t, nil
}

func compile(r config.Route) (route, error) {
	c := route{to: slices.Clone(r.To)}
	if r.Filter != "" {
		e, err := transform.Compile(r.Filter)
		if err != nil {
			c.broken = true
			return c, err
		}
		c.filter = e
	}
	if len(r.Match) > 0 {
		c.match = make([]matcher, 0, len(r.Match))
		for f, v := range r.Match {
			c.match = append(c.match, matcher{field: f, value: v})
		}
		slices.SortFunc(c.match, func(a, b matcher) int { return strings.Compare(a.field, b.field) })
	}
	return c, nil
}

// Match returns the destinations of every route whose webhook_id equals
// webhookID and whose every match field equals the event's field as text,
// de-duplicated, in order of first appearance across routes in config order.
// It returns nil when no route with destinations matches. The caller owns
// the returned slice.
// fields may be nil (no body fields); then only routes without matchers match.
// Routes with a filter never match here: they need the body (MatchInput).
func (t *Table) Match(webhookID string, fields map[string]string) []string {
	return t.MatchInput(context.Background(), webhookID, fields, nil)
}

// MatchInput is Match for routes with filters too: a route with a filter
// matches when its match fields do and its filter yields true on the value
// in returns, the event's body as jq reads it (transform.Input). in is
// called at most once, and only when a route whose match fields all matched
// has a filter, so bodies no filter needs are never parsed. A filter that
// fails (an error, the time limit, an unreadable body, or a nil in) does not
// match.
func (t *Table) MatchInput(ctx context.Context, webhookID string, fields map[string]string, in func() (any, error)) []string {
	if t == nil {
		return nil
	}
	w := t.byWebhook[webhookID]
	if w == nil {
		return nil
	}
	var dests []string
	ev := evaluation{in: in}
	for i := range w.routes {
		r := &w.routes[i]
		ok, err := t.matches(ctx, r, fields, &ev)
		if err != nil && t.log != nil && !errors.Is(err, errNoInput) {
			// Quiet: a jq error quotes the body, which the log must not.
			t.log.Warn("route: filter failed; the route does not match",
				"webhook_id", webhookID, "route", r.index+1, "err", transform.Quiet(err))
		}
		if !ok {
			continue
		}
		if dests == nil {
			dests = make([]string, 0, w.maxDests)
		}
		for _, d := range r.to {
			// Fan-out lists are short, so a linear scan beats a set.
			if !slices.Contains(dests, d) {
				dests = append(dests, d)
			}
		}
	}
	if len(dests) == 0 { // only routes without destinations matched
		return nil
	}
	return dests
}

// evaluation holds one event's parsed body, read once for all its routes.
type evaluation struct {
	in    func() (any, error)
	read  bool
	value any
	err   error
}

func (e *evaluation) input() (any, error) {
	if !e.read {
		e.read = true
		if e.in == nil {
			e.err = errNoInput
		} else {
			e.value, e.err = e.in()
		}
	}
	return e.value, e.err
}

var errNoInput = errors.New("route: no body to filter")

// matches checks the match fields first (the fast path), then the filter.
// err says why a filter did not match.
func (t *Table) matches(ctx context.Context, r *route, fields map[string]string, ev *evaluation) (bool, error) {
	if r.broken {
		return false, errors.New("route: filter did not compile")
	}
	if !r.matchFields(fields) {
		return false, nil
	}
	if r.filter == nil {
		return true, nil
	}
	v, err := ev.input()
	if err != nil {
		return false, err
	}
	return r.filter.Test(ctx, v, t.limits)
}

func (r *route) matchFields(fields map[string]string) bool {
	for _, m := range r.match {
		v, ok := fields[m.field]
		if !ok || v != m.value {
			return false
		}
	}
	return true
}

// Verdict is how one route judged an event, for relay try.
type Verdict struct {
	// Index is the route's position in the configuration's routes, from 0.
	Index int
	// Fields reports whether every match field matched.
	Fields bool
	// Filter is the route's filter ("" for none).
	Filter string
	// Matched reports whether the route matched.
	Matched bool
	// Err is why the filter failed, if it did.
	Err error
	// To lists the route's destinations.
	To []string
}

// Explain judges an event against every route of webhookID, in config order,
// evaluating every filter whose match fields matched.
func (t *Table) Explain(ctx context.Context, webhookID string, fields map[string]string, in func() (any, error)) []Verdict {
	if t == nil || t.byWebhook[webhookID] == nil {
		return nil
	}
	w := t.byWebhook[webhookID]
	ev := evaluation{in: in}
	out := make([]Verdict, 0, len(w.routes))
	for i := range w.routes {
		r := &w.routes[i]
		v := Verdict{Index: r.index, Fields: r.matchFields(fields), To: slices.Clone(r.to)}
		if r.filter != nil {
			v.Filter = r.filter.String()
		}
		v.Matched, v.Err = t.matches(ctx, r, fields, &ev)
		out = append(out, v)
	}
	return out
}

// NeedsBody reports whether routing webhookID depends on the body, that is
// whether some route for it has matchers or a filter. When it is false, ingest can route
// a body it cannot read.
func (t *Table) NeedsBody(webhookID string) bool {
	if t == nil {
		return false
	}
	w := t.byWebhook[webhookID]
	return w != nil && w.needsBody
}

// Filters reports whether some route of webhookID has a filter, that is
// whether MatchInput may need the body as a jq value.
func (t *Table) Filters(webhookID string) bool {
	if t == nil {
		return false
	}
	w := t.byWebhook[webhookID]
	return w != nil && w.filters
}

// Routes returns how many routes webhookID has; 0 means the webhook_id is
// unknown to the configuration.
func (t *Table) Routes(webhookID string) int {
	if t == nil {
		return 0
	}
	if w := t.byWebhook[webhookID]; w != nil {
		return len(w.routes)
	}
	return 0
}
