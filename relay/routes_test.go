package relay_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestListenerRoutes pins what the ingest listener's one router answers
// outside the happy path: ingest's JSON 404 and 405 for providers, the
// agent protocol's plain ones under /agent/v1/, and a redirect to the
// clean form of an unclean path (307, as net/http's ServeMux answered).
func TestListenerRoutes(t *testing.T) {
	base := startRelay(t, fanOut, newSink(t), newSink(t))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const (
		ingest404 = `{"status":"error","error":"not found: POST to /hooks/{webhook_id}"}` + "\n"
		ingest405 = `{"status":"error","error":"method not allowed: use POST"}` + "\n"
	)
	tests := []struct {
		method, path string
		status       int
		contentType  string
		body, allow  string
		location     string
	}{
		{"GET", "/hooks/1001", 405, "application/json", ingest405, "POST", ""},
		{"DELETE", "/hooks", 405, "application/json", ingest405, "POST", ""},
		{"POST", "/hooks/", 404, "application/json", ingest404, "", ""},
		{"POST", "/hooks/10%2F01", 404, "application/json", ingest404, "", ""},
		{"POST", "/elsewhere", 404, "application/json", ingest404, "", ""},
		{"GET", "/agent/v1/lease", 405, "text/plain; charset=utf-8", "Method Not Allowed\n", "POST", ""},
		{"POST", "/agent/v1/nope", 404, "text/plain; charset=utf-8", "404 page not found\n", "", ""},
		{"POST", "/hooks/x/../1001?a=1", 307, "", "", "", "/hooks/1001?a=1"},
		{"POST", "//hooks/1001", 307, "", "", "", "/hooks/1001"},
		{"POST", "/hooks/1001/", 404, "application/json", ingest404, "", ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(`{"mid":"r-1"}`))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		got := []string{resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), resp.Header.Get("Location")}
		want := []string{tt.contentType, tt.allow, tt.location}
		if resp.StatusCode != tt.status || strings.Join(got, "|") != strings.Join(want, "|") || (tt.body != "" && string(body) != tt.body) {
			t.Errorf("%s %s: %d %q %q, want %d %q %q", tt.method, tt.path, resp.StatusCode, got, body, tt.status, want, tt.body)
		}
	}
}
