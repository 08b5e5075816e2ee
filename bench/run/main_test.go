package main

import (
	"os"
	"reflect"
	"testing"
	"time"
)

func TestParseBench(t *testing.T) {
	out, err := os.ReadFile("testdata/deliver-bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		"BenchmarkDeliverBacklog/store=bolt": {
			"ns/op": 1520000000, "ceiling-posts/s": 9450, "relay-deliveries/s": 5784, "%-of-ceiling": 61.2, "relay-allocs/delivery": 117.6,
		},
		"BenchmarkDeliverBacklog/store=redis": {
			"ns/op": 2340000000, "forwarder-deliveries/s": 10695, "relay-deliveries/s": 4293, "redis-cpu-us/delivery": 80.26,
		},
	}
	if got := parseBench(string(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("parseBench =\n%v\nwant\n%v", got, want)
	}
}

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0"}, {999.4, "999"}, {999.5, "1,000"}, {1234567, "1,234,567"}, {100000, "100,000"}} {
		if got := thousands(tc.in); got != tc.want {
			t.Errorf("thousands(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		ok             int
		elapsed, drain time.Duration
		want           float64
	}{
		{1000, time.Second, 0, 1000},
		{1000, time.Second, time.Second, 500}, // delivery caught up after the load
		{1000, 0, 0, 0},
	} {
		m := measured{maxRun: loadResult{OK: tc.ok, elapsed: tc.elapsed}, drainAfter: tc.drain}
		if got := endToEnd(m); got != tc.want {
			t.Errorf("endToEnd(%d in %v, drained %v after) = %v, want %v", tc.ok, tc.elapsed, tc.drain, got, tc.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	f, err := os.Open("testdata/status.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := parseStatus(f), (mem{rss: 427248 << 10, anon: 7892 << 10}); got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
}
