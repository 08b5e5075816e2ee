package route_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
)

// The handler routes through this interface; keep the Table fitting it.
var _ ingest.Router = (*route.Table)(nil)

func testRoutes() []config.Route {
	return []config.Route{
		{WebhookID: "1001", To: []string{"crm", "archive"}},
		{WebhookID: "1001", Match: map[string]string{"status": "ANSWER"}, To: []string{"answered", "crm"}},
		{WebhookID: "1001", Match: map[string]string{"status": "ANSWER", "flow_id": "123"}, To: []string{"flow", "answered"}},
		{WebhookID: "1002", Match: map[string]string{"source": "OBD"}, To: []string{"obd"}},
		{WebhookID: "1003", Match: map[string]string{"note": ""}, To: []string{"empty-note"}},
		{WebhookID: "1003", Match: map[string]string{"status": "NOANSWER"}, To: []string{"missed"}},
		{WebhookID: "1004", To: nil}, // config validation refuses this; Match must still say nil
	}
}

func TestMatch(t *testing.T) {
	table := route.New(testRoutes())
	tests := []struct {
		name      string
		webhookID string
		fields    map[string]string
		want      []string
	}{
		{"unknown webhook", "9999", map[string]string{"status": "ANSWER"}, nil},
		{"empty webhook id", "", nil, nil},
		{"no fields: only routes without matchers", "1001", nil, []string{"crm", "archive"}},
		{"one matcher", "1001", map[string]string{"status": "ANSWER"}, []string{"crm", "archive", "answered"}},
		{"all matchers, de-duplicated in first-appearance order", "1001",
			map[string]string{"status": "ANSWER", "flow_id": "123"}, []string{"crm", "archive", "answered", "flow"}},
		{"text compare is case-sensitive", "1001", map[string]string{"status": "answer"}, []string{"crm", "archive"}},
		{"number text must match as written", "1001",
			map[string]string{"status": "ANSWER", "flow_id": "123.0"}, []string{"crm", "archive", "answered"}},
		{"leading zero differs", "1001",
			map[string]string{"status": "ANSWER", "flow_id": "0123"}, []string{"crm", "archive", "answered"}},
		{"missing field does not match", "1002", map[string]string{"status": "ANSWER"}, nil},
		{"matching field", "1002", map[string]string{"source": "OBD", "x": "y"}, []string{"obd"}},
		{"empty matcher value needs the field present", "1003", map[string]string{"status": "ANSWER"}, nil},
		{"empty matcher value matches empty field", "1003", map[string]string{"note": ""}, []string{"empty-note"}},
		{"route without destinations", "1004", nil, nil},
		{"several matchers of one webhook", "1003",
			map[string]string{"note": "", "status": "NOANSWER"}, []string{"empty-note", "missed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := table.Match(tt.webhookID, tt.fields)
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Match(%q, %q) = %#v, want %#v", tt.webhookID, tt.fields, got, tt.want)
			}
		})
	}
}

func TestNeedsBodyAndRoutes(t *testing.T) {
	table := route.New(testRoutes())
	tests := []struct {
		webhookID string
		needsBody bool
		routes    int
	}{
		{"1001", true, 3},
		{"1002", true, 1},
		{"1003", true, 2},
		{"1004", false, 1},
		{"9999", false, 0},
		{"", false, 0},
	}
	plain := route.New([]config.Route{{WebhookID: "2001", To: []string{"a"}}, {WebhookID: "2001", Match: map[string]string{}, To: []string{"b"}}})
	if plain.NeedsBody("2001") {
		t.Error("NeedsBody is true for a webhook whose routes have no matchers")
	}
	if got := plain.Routes("2001"); got != 2 {
		t.Errorf("Routes(2001) = %d, want 2", got)
	}
	for _, tt := range tests {
		if got := table.NeedsBody(tt.webhookID); got != tt.needsBody {
			t.Errorf("NeedsBody(%q) = %v, want %v", tt.webhookID, got, tt.needsBody)
		}
		if got := table.Routes(tt.webhookID); got != tt.routes {
			t.Errorf("Routes(%q) = %d, want %d", tt.webhookID, got, tt.routes)
		}
	}
}

func TestEmptyTables(t *testing.T) {
	for name, table := range map[string]*route.Table{"nil": nil, "zero": {}, "no routes": route.New(nil)} {
		if got := table.Match("1001", map[string]string{"a": "b"}); got != nil {
			t.Errorf("%s table: Match = %v, want nil", name, got)
		}
		if table.NeedsBody("1001") || table.Routes("1001") != 0 {
			t.Errorf("%s table: NeedsBody or Routes report a route", name)
		}
	}
}

// TestTableIsIndependent checks that the Table neither shares memory with the
// config it was built from nor with the slices it hands out.
func TestTableIsIndependent(t *testing.T) {
	routes := []config.Route{{WebhookID: "1001", Match: map[string]string{"status": "ANSWER"}, To: []string{"a", "b"}}}
	table := route.New(routes)
	routes[0].To[0] = "changed"
	routes[0].Match["status"] = "BUSY"
	routes[0].WebhookID = "other"

	fields := map[string]string{"status": "ANSWER"}
	got := table.Match("1001", fields)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after editing the config, Match = %v, want [a b]", got)
	}
	got[0] = "mutated"
	if again := table.Match("1001", fields); !slices.Equal(again, []string{"a", "b"}) {
		t.Errorf("after editing a result, Match = %v, want [a b]", again)
	}
}

// TestMatchSeedBody routes the provider's documented example body end to end:
// its masked bare numbers and trailing comma must not stop routing.
func TestMatchSeedBody(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "ingest", "testdata", "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	fields, err := ingest.ExtractJSON(body)
	if err != nil {
		t.Fatalf("ExtractJSON(seed): %v", err)
	}
	table := route.New([]config.Route{
		{WebhookID: "1001", Match: map[string]string{"status": "ANSWER", "flow_id": "123"}, To: []string{"answered-flow"}},
		{WebhookID: "1001", Match: map[string]string{"bridge": "91806828XXXX", "source": "OBD"}, To: []string{"bridge"}},
		{WebhookID: "1001", Match: map[string]string{"mid": "1234-1333-XXXXX", "duration": "23"}, To: []string{"by-mid", "bridge"}},
		{WebhookID: "1001", Match: map[string]string{"status": "NOANSWER"}, To: []string{"missed"}},
		{WebhookID: "1001", Match: map[string]string{"webhook_id": "1001"}, To: []string{"never"}}, // the seed has no webhook_id
	})
	want := []string{"answered-flow", "bridge", "by-mid"}
	if got := table.Match("1001", fields); !slices.Equal(got, want) {
		t.Errorf("Match(seed) = %v, want %v", got, want)
	}
	if got := table.Match("1002", fields); got != nil {
		t.Errorf("Match(1002, seed) = %v, want nil", got)
	}
}

func BenchmarkMatch(b *testing.B) {
	// 200 webhooks with 5 routes each, 4 of them with two matchers.
	var routes []config.Route
	for w := range 200 {
		id := fmt.Sprint(1000 + w)
		routes = append(routes, config.Route{WebhookID: id, To: []string{"all-" + id}})
		for r, status := range []string{"ANSWER", "NOANSWER", "BUSY", "FAILED"} {
			routes = append(routes, config.Route{
				WebhookID: id,
				Match:     map[string]string{"status": status, "flow_id": fmt.Sprint(120 + r)},
				To:        []string{"dest-" + status, "all-" + id},
			})
		}
	}
	table := route.New(routes)
	fields := map[string]string{
		"bridge": "91806828XXXX", "source": "OBD", "mid": "1234-1333-XXXXX",
		"flow_id": "123", "status": "FAILED", "duration": "23",
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := table.Match("1100", fields); len(got) != 2 {
			b.Fatalf("Match = %v", got)
		}
	}
}
