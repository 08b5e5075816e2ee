package admin_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/relaygw/relay/relay/admin"
)

// TestPprof: /debug/pprof/ exists only when asked for, and then only for
// the admin token: no token is 401, a portal's is 403.
func TestPprof(t *testing.T) {
	on := portalAPI(t, func(o *admin.Options) { o.Pprof = true })
	off := portalAPI(t)
	for _, tc := range []struct {
		name   string
		a      *api
		path   string
		status int
		body   string // a piece of a 200's body
	}{
		{"index", on, "/debug/pprof/", http.StatusOK, "goroutine"},
		{"named profile", on, "/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile:"},
		{"cmdline", on, "/debug/pprof/cmdline", http.StatusOK, "admin.test"},
		{"symbol", on, "/debug/pprof/symbol", http.StatusOK, "num_symbols"},
		{"no token", on.as(""), "/debug/pprof/", http.StatusUnauthorized, ""},
		{"wrong token", on.as("not-the-token"), "/debug/pprof/heap", http.StatusUnauthorized, ""},
		{"portal token", on.as(acmeToken), "/debug/pprof/goroutine?debug=1", http.StatusForbidden, ""},
		{"portal token on cmdline", on.as(acmeToken), "/debug/pprof/cmdline", http.StatusForbidden, ""},
		{"off", off, "/debug/pprof/", http.StatusNotFound, ""},
		{"off, named", off, "/debug/pprof/heap", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := tc.a.do(http.MethodGet, tc.path)
			if status != tc.status {
				t.Fatalf("GET %s: %d %s; want %d", tc.path, status, body, tc.status)
			}
			if tc.body != "" && !bytes.Contains(body, []byte(tc.body)) {
				t.Fatalf("GET %s: body lacks %q:\n%.300s", tc.path, tc.body, body)
			}
		})
	}
}

// TestMetricsAuth: /metrics needs no token (Prometheus scrapes it) unless
// admin.metrics_auth asks for the admin token; a portal's is 403 either way.
func TestMetricsAuth(t *testing.T) {
	on := portalAPI(t, func(o *admin.Options) { o.MetricsAuth = true })
	off := portalAPI(t)
	for _, tc := range []struct {
		name   string
		a      *api
		status int
	}{
		{"on, admin token", on, http.StatusOK},
		{"on, no token", on.as(""), http.StatusUnauthorized},
		{"on, wrong token", on.as("not-the-token"), http.StatusUnauthorized},
		{"on, portal token", on.as(acmeToken), http.StatusForbidden},
		{"off, no token", off.as(""), http.StatusOK},
		{"off, portal token", off.as(acmeToken), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := tc.a.do(http.MethodGet, "/metrics")
			if status != tc.status {
				t.Fatalf("GET /metrics: %d %.300s; want %d", status, body, tc.status)
			}
			if status == http.StatusOK && !bytes.Contains(body, []byte("relay_")) {
				t.Fatalf("GET /metrics: body lacks the relay's metrics:\n%.300s", body)
			}
		})
	}
}
