package main

import (
	"reflect"
	"testing"
	"time"
)

func TestClusterOK(t *testing.T) {
	for _, tc := range []struct {
		name string
		info string
		want bool
	}{
		{"ok", "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n", true},
		{"forming", "cluster_state:fail\r\ncluster_slots_ok:16384\r\n", false},
		{"slots missing", "cluster_state:ok\r\ncluster_slots_ok:10923\r\n", false},
		{"empty", "", false},
	} {
		if got := clusterOK(tc.info); got != tc.want {
			t.Errorf("%s: clusterOK = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSuccesses(t *testing.T) {
	page := `# HELP relay_deliveries_total Delivery attempts by destination and outcome.
# TYPE relay_deliveries_total counter
relay_deliveries_total{destination="sink",outcome="retry"} 7
relay_deliveries_total{destination="sink",outcome="success"} 1.234567e+06
relay_deliveries_total{destination="sink2",outcome="success"} 5
`
	for _, tc := range []struct {
		dest string
		want int
	}{{"sink", 1234567}, {"sink2", 5}, {"other", 0}} {
		if got := successes(page, tc.dest); got != tc.want {
			t.Errorf("successes(%q) = %d, want %d", tc.dest, got, tc.want)
		}
	}
}

func TestScaleRow(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  scaleRun
		want []string
	}{
		{
			name: "measured",
			run: scaleRun{
				store: "one Redis, 1 partition", procs: 2,
				ingest:    loadResult{OK: 50_000, Rate: 5_000},
				delivered: 49_000, drain: 2500 * time.Millisecond, elapsed: 12500 * time.Millisecond,
				relayCPU: 5 * time.Second, redisCPU: 4 * time.Second, sinkCPU: time.Second, loadCPU: 2 * time.Second,
				machine: 20 * time.Second,
			},
			// 49,000 delivered in 12.5 s; CPU per 50,000 answered; 20 s busy of 25 CPU-seconds; 8 s of it none of ours, per 12.5 s.
			want: []string{"one Redis, 1 partition", "2", "5,000", "3,920", "2.5 s", "100", "80", "20", "40", "80 %", "64 %"},
		},
		{
			name: "more delivered than answered",
			run: scaleRun{
				store: "c", procs: 4, ingest: loadResult{OK: 900, Rate: 90}, delivered: 1000,
				elapsed: 10 * time.Second, relayCPU: 100 * time.Millisecond, machine: time.Second,
			},
			want: []string{"c", "4", "90", "100", "0.0 s", "100", "0", "0", "0", "5 %", "9 %"},
		},
		{
			name: "nothing accepted",
			run:  scaleRun{store: "s", procs: 1},
			want: []string{"s", "1", "0", "–", "0.0 s", "–", "–", "–", "–", "–", "–"},
		},
	} {
		if got := tc.run.row(2); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: row =\n%q\nwant\n%q", tc.name, got, tc.want)
		}
		if len(tc.want) != len(scaleHead) {
			t.Errorf("%s: %d cells for %d columns", tc.name, len(tc.want), len(scaleHead))
		}
	}
}
