package admin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/state"
)

// samples flattens a registry's metrics into "name{k=v,...}" -> value; a
// histogram gives its _count and _sum.
func samples(t testing.TB, m *admin.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = mt.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = mt.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(mt.GetHistogram().GetSampleCount())
				out[strings.Replace(key, "{", "_sum{", 1)] = mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func wantSamples(t testing.TB, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			var have []string
			for h := range got {
				if strings.HasPrefix(h, k[:strings.IndexByte(k, '{')]) {
					have = append(have, h)
				}
			}
			slices.Sort(have)
			t.Errorf("no sample %s; have %v", k, have)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

// A known sequence of ingest answers, attempts and store states gives known
// values, read the way Prometheus reads them.
func TestMetricsValues(t *testing.T) {
	a := newAPI(t)
	states := []state.Destination{
		{Name: "crm", InFlight: 3, Circuit: "open"},
		{Name: "archive", Circuit: "half-open"},
		{Name: "office", Agent: "office-1"},
	}
	m := admin.NewMetrics(admin.MetricsOptions{
		Depths: a.st, Destinations: func() []state.Destination { return states }, Version: "1.2.3",
	})
	m.KnowDestinations([]string{"crm", "archive", "office"})
	for _, o := range []string{"accepted", "accepted", "duplicate", "rejected", "too_large", "parked"} {
		m.Ingest(o, 2*time.Millisecond)
	}
	m.Delivery("crm", "retry", 100*time.Millisecond)
	m.Delivery("crm", "retry", 200*time.Millisecond)
	m.Delivery("crm", "success", 300*time.Millisecond)
	m.Delivery("archive", "dead", time.Second)
	m.Reloaded(false)
	m.Reloaded(true)
	m.Yielded("crm", 20*time.Millisecond)
	m.Yielded("crm", 5*time.Millisecond)

	a.accept("1001", "", "application/json", []byte("{}"), "crm", "archive")
	a.accept("1001", "", "application/json", []byte("{}"), "crm", "archive")
	a.accept("1001", "", "application/json", []byte("{}"), "crm", "removed")
	a.accept("9999", "", "application/json", []byte("{}"))
	a.kill("archive", 500, "x")

	wantSamples(t, samples(t, m), map[string]float64{
		"relay_ingest_requests_total{outcome=accepted}":              2,
		"relay_ingest_requests_total{outcome=duplicate}":             1,
		"relay_ingest_requests_total{outcome=rejected}":              1,
		"relay_ingest_requests_total{outcome=too_large}":             1,
		"relay_ingest_requests_total{outcome=parked}":                1,
		"relay_ingest_requests_total{outcome=unmatched}":             0,
		"relay_ingest_requests_total{outcome=error}":                 0,
		"relay_ingest_duration_seconds_count{outcome=accepted}":      2,
		"relay_deliveries_total{destination=crm,outcome=retry}":      2,
		"relay_deliveries_total{destination=crm,outcome=success}":    1,
		"relay_deliveries_total{destination=crm,outcome=dead}":       0,
		"relay_deliveries_total{destination=archive,outcome=dead}":   1,
		"relay_deliveries_total{destination=office,outcome=success}": 0,
		"relay_delivery_duration_seconds_count{destination=crm}":     3,
		"relay_queue_depth{destination=crm}":                         3,
		"relay_queue_depth{destination=archive}":                     1,
		"relay_queue_depth{destination=office}":                      0,
		"relay_queue_depth{destination=removed}":                     1,
		"relay_dlq_depth{}":                                          1,
		"relay_dlq_destination_depth{destination=archive}":           1,
		"relay_dlq_destination_depth{destination=crm}":               0,
		"relay_parked_events{}":                                      1,
		"relay_delivery_in_flight{destination=crm}":                  3,
		"relay_delivery_yield_seconds_total{destination=crm}":        0.025,
		"relay_delivery_yield_seconds_total{destination=office}":     0,
		"relay_circuit_state{destination=crm}":                       2,
		"relay_circuit_state{destination=archive}":                   1,
		"relay_store_up{}":                                           1,
		"relay_config_reloads_total{result=success}":                 1,
		"relay_config_reloads_total{result=failure}":                 1,
		"relay_config_last_reload_successful{}":                      1,
		"relay_build_info{version=1.2.3}":                            1,
	})
	got := samples(t, m)
	if sum := got["relay_delivery_duration_seconds_sum{destination=crm}"]; sum < 0.599 || sum > 0.601 {
		t.Errorf("crm delivery durations sum to %v, want 0.6", sum)
	}
	if _, ok := got["relay_circuit_state{destination=office}"]; ok {
		t.Error("an agent destination, which has no breaker, has a circuit state")
	}

	// The handler serves the text format.
	srv := httptest.NewServer(admin.NewHandler(admin.Options{Store: a.st, Metrics: m}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range []string{
		`relay_ingest_requests_total{outcome="accepted"} 2`,
		`relay_dlq_depth 1`,
		`relay_queue_depth{destination="crm"} 3`,
		`# TYPE relay_delivery_duration_seconds histogram`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}

	// A store that does not answer shows as relay_store_up 0, not an error.
	a.st.Close()
	got = samples(t, m)
	if up, ok := got["relay_store_up{}"]; !ok || up != 0 {
		t.Errorf("closed store: relay_store_up %v (present %v), want 0", up, ok)
	}
}
