package config

import "testing"

func TestRouteSummaries(t *testing.T) {
	c := &Config{Routes: []Route{
		{WebhookID: "1001", To: []string{"acme-crm", "acme-archive"}},
		{WebhookID: "1002", Match: map[string]string{"status": "ANSWER", "source": "OBD"}, To: []string{"acme-crm"}},
		{WebhookID: "1003", Match: map[string]string{}, To: []string{"x"}},
		{WebhookID: "1004", Match: map[string]string{"source": "OBD"}, Filter: ".status == \"ANSWER\"\n  and .x", To: []string{"x"}},
	}}
	assertLines(t, c.RouteSummaries(), []string{
		"1001 -> acme-crm, acme-archive",
		"1002 [source=OBD status=ANSWER] -> acme-crm",
		"1003 -> x",
		`1004 [source=OBD] filter .status == "ANSWER" and .x -> x`,
	})
}

func TestDestinationAndAgent(t *testing.T) {
	c := &Config{
		Destinations: []Destination{{Name: "a", URL: "http://a"}, {Name: "b", URL: "http://b"}},
		Agents:       []Agent{{Name: "office-1", Token: "t"}},
	}
	if d, ok := c.Destination("b"); !ok || d.URL != "http://b" {
		t.Errorf("Destination(b) = %+v, %v", d, ok)
	}
	if _, ok := c.Destination("c"); ok {
		t.Error("Destination(c) found, want not found")
	}
	if a, ok := c.Agent("office-1"); !ok || a.Token != "t" {
		t.Errorf("Agent(office-1) = %+v, %v", a, ok)
	}
	if _, ok := c.Agent("office-2"); ok {
		t.Error("Agent(office-2) found, want not found")
	}
}

func TestDestinationSame(t *testing.T) {
	a := Destination{Name: "a", URL: "http://x", Headers: map[string]string{"K": "v"}, Line: 3}
	moved := a
	moved.Line = 9
	if !a.Same(moved) {
		t.Error("a destination that only moved in the file is not Same")
	}
	changed := a
	changed.Headers = map[string]string{"K": "w"}
	if a.Same(changed) {
		t.Error("a changed header value is Same")
	}
}
