package route

import (
	"slices"
	"strings"

	"github.com/relaygw/relay/config"
)

// Table is the routing table compiled from the configured routes. The zero
// value and a nil *Table route nothing. A Table is immutable after New and
// safe for concurrent use.
type Table struct {
	byWebhook map[string]*webhook
}

// webhook holds the compiled routes of one webhook_id in config order.
type webhook struct {
	routes    []route
	needsBody bool
	maxDests  int // sum of the routes' fan-outs, to size Match's result once
}

type route struct {
	match []matcher // sorted by field, so matching is deterministic
	to    []string
}

type matcher struct {
	field, value string
}

// New compiles routes into a Table. It copies what it keeps, so later changes
// to routes do not affect the Table. It does not validate: the config package
// refuses routes without a webhook_id or with unknown destinations first.
func New(routes []config.Route) *Table {
	t := &Table{byWebhook: make(map[string]*webhook, len(routes))}
	for _, r := range routes {
		w := t.byWebhook[r.WebhookID]
		if w == nil {
			w = &webhook{}
			t.byWebhook[r.WebhookID] = w
		}
		w.routes = append(w.routes, compile(r))
		w.maxDests += len(r.To)
		if len(r.Match) > 0 {
			w.needsBody = true
		}
	}
	return t
}

func compile(r config.Route) route {
	c := route{to: slices.Clone(r.To)}
	if len(r.Match) > 0 {
		c.match = make([]matcher, 0, len(r.Match))
		for f, v := range r.Match {
			c.match = append(c.match, matcher{field: f, value: v})
		}
		slices.SortFunc(c.match, func(a, b matcher) int { return strings.Compare(a.field, b.field) })
	}
	return c
}

// Match returns the destinations of every route whose webhook_id equals
// webhookID and whose every match field equals the event's field as text,
// de-duplicated, in order of first appearance across routes in config order.
// It returns nil when no route with destinations matches. The caller owns
// the returned slice.
// fields may be nil (no body fields); then only routes without matchers match.
func (t *Table) Match(webhookID string, fields map[string]string) []string {
	if t == nil {
		return nil
	}
	w := t.byWebhook[webhookID]
	if w == nil {
		return nil
	}
	var dests []string
	for i := range w.routes {
		r := &w.routes[i]
		if !r.matches(fields) {
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

func (r *route) matches(fields map[string]string) bool {
	for _, m := range r.match {
		v, ok := fields[m.field]
		if !ok || v != m.value {
			return false
		}
	}
	return true
}

// NeedsBody reports whether routing webhookID depends on body fields, that is
// whether some route for it has matchers. When it is false, ingest can route
// a body it cannot read.
func (t *Table) NeedsBody(webhookID string) bool {
	if t == nil {
		return false
	}
	w := t.byWebhook[webhookID]
	return w != nil && w.needsBody
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
