package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// RouteSummaries describes each route on one line for `relay check`, in file
// order: "1001 [status=ANSWER] -> acme-crm, acme-archive", matchers sorted by
// field and the brackets left out when the route has none; a jq filter
// follows as "filter EXPR", on one line.
func (c *Config) RouteSummaries() []string {
	out := make([]string, len(c.Routes))
	for i, r := range c.Routes {
		var b strings.Builder
		b.WriteString(r.WebhookID)
		if len(r.Match) > 0 {
			keys := make([]string, 0, len(r.Match))
			for k := range r.Match {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for j, k := range keys {
				keys[j] = k + "=" + r.Match[k]
			}
			fmt.Fprintf(&b, " [%s]", strings.Join(keys, " "))
		}
		if r.Filter != "" {
			fmt.Fprintf(&b, " filter %s", strings.Join(strings.Fields(r.Filter), " "))
		}
		fmt.Fprintf(&b, " -> %s", strings.Join(r.To, ", "))
		out[i] = b.String()
	}
	return out
}

// Destination returns the destination called name.
func (c *Config) Destination(name string) (Destination, bool) {
	for _, d := range c.Destinations {
		if d.Name == name {
			return d, true
		}
	}
	return Destination{}, false
}

// Agent returns the agent called name.
func (c *Config) Agent(name string) (Agent, bool) {
	for _, a := range c.Agents {
		if a.Name == name {
			return a, true
		}
	}
	return Agent{}, false
}

// Same reports whether d and o configure a destination the same way,
// ignoring where in the file each is written: a reload that only moves a
// destination changes nothing.
func (d Destination) Same(o Destination) bool {
	d.Line, o.Line = 0, 0
	return reflect.DeepEqual(d, o)
}
