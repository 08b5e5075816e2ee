package route_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
)

func filterRoutes() []config.Route {
	return []config.Route{
		{WebhookID: "1003", To: []string{"all"}},
		{WebhookID: "1003", Filter: `.status == "ANSWER" and (.duration|tonumber) > 10`, To: []string{"long"}},
		{WebhookID: "1003", Match: map[string]string{"source": "OBD"}, Filter: `.flow_id == 123`, To: []string{"obd-flow"}},
		{WebhookID: "1003", Match: map[string]string{"source": "IVR"}, Filter: `true`, To: []string{"ivr"}},
		{WebhookID: "1003", Filter: `.status | tonumber > 1`, To: []string{"broken"}},
		{WebhookID: "1004", Match: map[string]string{"status": "ANSWER"}, To: []string{"plain"}},
		{WebhookID: "1005", Match: map[string]string{"source": "IVR"}, Filter: `true`, To: []string{"ivr"}},
	}
}

// countingInput reads body as ingest does and counts the reads.
func countingInput(t *testing.T, body []byte) (func() (any, error), *int) {
	t.Helper()
	n := 0
	return func() (any, error) {
		n++
		return ingest.Value(ingest.KindJSON, body)
	}, &n
}

func TestMatchInputFilters(t *testing.T) {
	seed, err := os.ReadFile("../testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	short := []byte(strings.Replace(string(seed), `"duration": "23"`, `"duration": "7"`, 1))
	fields, err := ingest.ExtractJSON(seed)
	if err != nil {
		t.Fatal(err)
	}
	table, err := route.Compile(filterRoutes())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		webhookID string
		body      []byte
		fields    map[string]string
		noInput   bool
		want      []string
		wantReads int
	}{
		{"seed passes both filters, read once", "1003", seed, fields, false, []string{"all", "long", "obd-flow"}, 1},
		{"short call fails the duration filter", "1003", short, fields, false, []string{"all", "obd-flow"}, 1},
		{"other match fields: the filter's route is skipped", "1003", seed,
			map[string]string{"source": "XYZ"}, false, []string{"all", "long"}, 1},
		{"match fields fail first: the body is not read", "1005", seed, fields, false, nil, 0},
		{"no input: filters do not match", "1003", nil, fields, true, []string{"all"}, 0},
		{"webhook without filters never reads the body", "1004", seed, map[string]string{"status": "ANSWER"}, false, []string{"plain"}, 0},
		{"unreadable body: filters do not match", "1003", []byte(`not json`), fields, false, []string{"all"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, reads := countingInput(t, tt.body)
			if tt.noInput {
				in = nil
			}
			got := table.MatchInput(context.Background(), tt.webhookID, tt.fields, in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("MatchInput = %v, want %v", got, tt.want)
			}
			if *reads != tt.wantReads {
				t.Errorf("input read %d times, want %d", *reads, tt.wantReads)
			}
		})
	}
	if got := table.Match("1003", fields); !slices.Equal(got, []string{"all"}) {
		t.Errorf("Match without input = %v, want only the route without a filter", got)
	}
	if !table.Filters("1003") || table.Filters("1004") || !table.NeedsBody("1003") {
		t.Error("Filters or NeedsBody wrong: a filter needs the body")
	}
	if only := route.New([]config.Route{{WebhookID: "7", Filter: "true", To: []string{"x"}}}); !only.NeedsBody("7") {
		t.Error("a route with only a filter does not need the body")
	}
}

// TestFilterErrorsAreLogged: a filter that fails while routing is logged
// with its webhook and route number, not silently a non-match.
func TestFilterErrorsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	table := route.New(filterRoutes()).WithLog(slog.New(slog.NewTextHandler(&buf, nil)))
	seed, _ := os.ReadFile("../testdata/seed.json")
	in, _ := countingInput(t, seed)
	table.MatchInput(context.Background(), "1003", nil, in)
	out := buf.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "webhook_id=1003 route=5") ||
		!strings.Contains(out, `tonumber cannot be applied`) {
		t.Errorf("log = %s, want one warning naming route 5 and the jq error", out)
	}
}

func TestExplain(t *testing.T) {
	seed, _ := os.ReadFile("../testdata/seed.json")
	fields, _ := ingest.ExtractJSON(seed)
	table := route.New(filterRoutes())
	in, reads := countingInput(t, seed)
	got := table.Explain(context.Background(), "1003", fields, in)
	if len(got) != 5 || *reads != 1 {
		t.Fatalf("Explain gave %d verdicts reading the body %d times, want 5 and 1", len(got), *reads)
	}
	want := []struct {
		index         int
		fields, match bool
		err           string
	}{
		{0, true, true, ""}, {1, true, true, ""}, {2, true, true, ""}, {3, false, false, ""},
		{4, true, false, `tonumber cannot be applied to "ANSWER"`},
	}
	for i, w := range want {
		v := got[i]
		if v.Index != w.index || v.Fields != w.fields || v.Matched != w.match || (w.err == "") != (v.Err == nil) ||
			(v.Err != nil && !strings.Contains(v.Err.Error(), w.err)) {
			t.Errorf("verdict %d = %+v, want %+v", i, v, w)
		}
	}
}

func TestCompileBrokenFilter(t *testing.T) {
	routes := []config.Route{
		{WebhookID: "1", Filter: `.a ==`, To: []string{"x"}},
		{WebhookID: "1", To: []string{"y"}},
	}
	if _, err := route.Compile(routes); err == nil || !strings.Contains(err.Error(), "route 1: filter: jq: unexpected EOF") {
		t.Errorf("Compile error = %v, want route 1's jq error", err)
	}
	// New, for validated configs, keeps going: the broken route matches nothing.
	got := route.New(routes).MatchInput(context.Background(), "1", nil, func() (any, error) { return map[string]any{}, nil })
	if !slices.Equal(got, []string{"y"}) {
		t.Errorf("MatchInput = %v, want [y]", got)
	}
}
