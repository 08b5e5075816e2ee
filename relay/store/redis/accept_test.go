package redis

import (
	"encoding/json"
	"testing"
)

// destsJSON writes what json.Marshal writes, for a nil list too.
func TestDestsJSON(t *testing.T) {
	for _, dests := range [][]string{
		nil,
		{},
		{"crm"},
		{"crm", "archive", "acme-crm_2"},
		{`a"b`, "c"},
		{`back\slash`},
		{"<html>&"},
		{"tab\there"},
		{"ünïcode", "\u2028"},
		{""},
	} {
		got, err := destsJSON(dests)
		if err != nil {
			t.Fatalf("destsJSON(%q): %v", dests, err)
		}
		list := dests
		if list == nil {
			list = []string{}
		}
		want, _ := json.Marshal(list)
		if got != string(want) {
			t.Errorf("destsJSON(%q) = %s, want %s", dests, got, want)
		}
	}
}
