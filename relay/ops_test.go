package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay"
)

// running is a relay started from a config file, as `relay serve` runs it,
// so that Reload can read the file again.
type running struct {
	*relaytest.Relay // Server, Ingest, Admin; Cancel, Done, Stop
	cfgPath          string
	data             string // the embedded store's directory
}

// configText is a relay config on loopback ports with an embedded store in
// data; body holds the rest, with {{a}} and {{b}} replaced by the sinks'
// URLs.
func configText(data, body string, a, b *sink) string {
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0, token: t0ken}\n" +
		"store: {embedded: {path: " + data + "}}\n" +
		"delivery: {poll_interval: 50ms}\n" + body
	r := []string{}
	if a != nil {
		r = append(r, "{{a}}", a.URL)
	}
	if b != nil {
		r = append(r, "{{b}}", b.URL)
	}
	return strings.NewReplacer(r...).Replace(text)
}

// startFile writes the config to a file and runs a relay from it.
func startFile(t *testing.T, body string, a, b *sink, opts relay.Options) *running {
	t.Helper()
	dir := t.TempDir()
	r := &running{cfgPath: filepath.Join(dir, "relay.yaml"), data: filepath.Join(dir, "data")}
	r.rewrite(t, body, a, b)
	cfg, err := config.LoadFile(r.cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r.Relay = relaytest.Start(t, cfg, opts)
	return r
}

func (r *running) rewrite(t testing.TB, body string, a, b *sink) {
	t.Helper()
	if err := os.WriteFile(r.cfgPath, []byte(configText(r.data, body, a, b)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// call sends an admin API request with the token and decodes the answer.
func (r *running) call(t testing.TB, method, path string, wantStatus int, v any) {
	t.Helper()
	req, _ := http.NewRequest(method, r.Admin+path, nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, body, wantStatus)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, body, err)
		}
	}
}

// metrics scrapes /metrics and returns "name{k=v,...}" -> value for
// counters and gauges.
func (r *running) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get(r.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// newSinkFunc is a sink that answers each request with status() (0 for
// 200) after recording it; handle, when set, runs first (a slow receiver).
func newSinkFunc(t testing.TB, status func() int) *sink {
	t.Helper()
	s := &sink{seen: make(chan struct{}, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, received{header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		if code := status(); code != 0 {
			w.WriteHeader(code)
		}
		s.seen <- struct{}{}
	}))
	t.Cleanup(s.Close)
	return s
}

// flaky is a sink that answers 503 while down is set.
func flaky(t testing.TB) (*sink, *atomic.Bool) {
	t.Helper()
	down := new(atomic.Bool)
	return newSinkFunc(t, func() int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}), down
}

// eventually polls cond until it holds or 20 seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A known sequence of callbacks and delivery outcomes shows in /metrics
// with exactly the expected values.
func TestMetricsAfterKnownSequence(t *testing.T) {
	var calls atomic.Int64
	crm := newSinkFunc(t, func() int {
		if calls.Add(1) == 1 {
			return http.StatusInternalServerError // the first attempt fails
		}
		return 0
	})
	r := startFile(t, `ingest: {max_body_bytes: 2048}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "{{a}}/calls"
    retry: {initial_interval: 10ms, max_interval: 20ms}
`, crm, nil, relay.Options{Version: "9.9.9"})
	hooks := r.Ingest + "/hooks/"
	post(t, hooks+"1001", "application/json", seedBody(t))                // accepted
	post(t, hooks+"1001", "application/json", seedBody(t))                // duplicate
	post(t, r.Ingest+"/hooks", "application/json", []byte(`{"mid":"x"}`)) // rejected: no webhook_id
	post(t, hooks+"7777", "application/json", []byte(`{"mid":"p"}`))      // parked
	post(t, hooks+"1001", "application/json", bytes.Repeat([]byte("x"), 4096))
	crm.waitFor(t, 2)
	// The counter moves when the attempt ends; the queue depth when the
	// store commits the outcome, which may linger up to 50 ms for others.
	eventually(t, "the success is counted and recorded", func() bool {
		m := r.metrics(t)
		return m["relay_deliveries_total{destination=crm,outcome=success}"] == 1 &&
			m["relay_queue_depth{destination=crm}"] == 0
	})

	got := r.metrics(t)
	want := map[string]float64{
		"relay_ingest_requests_total{outcome=accepted}":           1,
		"relay_ingest_requests_total{outcome=duplicate}":          1,
		"relay_ingest_requests_total{outcome=rejected}":           1,
		"relay_ingest_requests_total{outcome=parked}":             1,
		"relay_ingest_requests_total{outcome=too_large}":          1,
		"relay_ingest_requests_total{outcome=unmatched}":          0,
		"relay_ingest_requests_total{outcome=error}":              0,
		"relay_ingest_duration_seconds_count{outcome=accepted}":   1,
		"relay_deliveries_total{destination=crm,outcome=retry}":   1,
		"relay_deliveries_total{destination=crm,outcome=success}": 1,
		"relay_deliveries_total{destination=crm,outcome=dead}":    0,
		"relay_delivery_duration_seconds_count{destination=crm}":  2,
		"relay_queue_depth{destination=crm}":                      0,
		"relay_dlq_depth{}":                                       0,
		"relay_parked_events{}":                                   1,
		"relay_circuit_state{destination=crm}":                    0,
		"relay_store_up{}":                                        1,
		"relay_build_info{version=9.9.9}":                         1,
		"relay_config_last_reload_successful{}":                   1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// The admin API reachable from other hosts without a token is refused by
// the config that serve loads; with a token, or on loopback, it starts
// without a warning.
func TestOpenAdminRefused(t *testing.T) {
	tests := []struct {
		name, admin string
		refused     bool
	}{
		{"loopback", "{listen: 127.0.0.1:0}", false},
		{"ipv6 loopback", "{listen: '[::1]:0'}", false},
		{"any address", "{listen: 0.0.0.0:0}", true},
		{"any address with a token", "{listen: 0.0.0.0:0, token: secret}", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]byte("listen: 127.0.0.1:0\nadmin: "+tc.admin+
				"\nstore: {embedded: {path: '"+t.TempDir()+"'}}\n"), "test.yaml")
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "admin.token is empty") {
					t.Fatalf("config error %v; want admin.token named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(context.Background())
			srv, err := relay.New(ctx, cfg, relay.Options{Logger: log})
			if err != nil {
				if strings.Contains(tc.admin, "::1") {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			cancel()
			if err := srv.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logs.String(), "admin.token is empty") {
				t.Errorf("warned; log:\n%s", logs.String())
			}
		})
	}
}
