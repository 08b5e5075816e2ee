package ingest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
)

// TestFilterRoutes: a route's jq filter decides at ingest on the body as
// the provider sent it (the seed, verbatim), as JSON or a form; a body jq
// cannot read is refused like one match fields cannot read.
func TestFilterRoutes(t *testing.T) {
	seed, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	router := route.New([]config.Route{
		{WebhookID: "1003", To: []string{"all"}},
		{WebhookID: "1003", Filter: `.status == "ANSWER" and (.duration|tonumber) > 10`, To: []string{"long"}},
	})
	tests := []struct {
		name, ct, body string
		status         int
		dests          []string
		hungUp         bool // the provider's request context is already cancelled
	}{
		{"seed", "application/json", string(seed), 202, []string{"all", "long"}, false},
		{"short call", "application/json", strings.Replace(string(seed), `"23"`, `"9"`, 1), 202, []string{"all"}, false},
		{"form body", "application/x-www-form-urlencoded", "status=ANSWER&duration=30&mid=m-1", 202, []string{"all", "long"}, false},
		{"duration not a number", "application/json", `{"status":"ANSWER","duration":"n/a"}`, 202, []string{"all"}, false},
		{"provider hung up", "application/json", string(seed), 202, []string{"all", "long"}, true},
		{"text body", "text/plain", "answered", 415, nil, false},
		{"broken JSON", "application/json", `{"status":`, 400, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			called := false
			h := ingest.NewHandler(acceptFunc(func(_ store.Event, dests []string, _ store.Dedupe) (store.AcceptResult, error) {
				got, called = dests, true
				return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
			}), ingest.Settings{Router: router, MaxBodyBytes: 1 << 20, ResponseStatus: 202, DedupeTTL: time.Hour}, nil)
			req := httptest.NewRequest(http.MethodPost, "/hooks/1003", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ct)
			if tt.hungUp {
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || !slices.Equal(got, tt.dests) || called != (tt.status == 202) {
				t.Errorf("status %d, dests %v (stored: %v); want %d, %v\n%s", rec.Code, got, called, tt.status, tt.dests, rec.Body)
			}
		})
	}
}
