package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   float64
	}{
		{"empty", nil, 0.99, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.999, 3},
		{"p50 of 100", hundred, 0.50, 50},
		{"p99 of 100", hundred, 0.99, 99},
		{"p99.9 of 100 is the max", hundred, 0.999, 100},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

// TestOpenLoopSendsTheSchedule checks that every scheduled request is sent
// once with a unique mid, and counted.
func TestOpenLoopSendsTheSchedule(t *testing.T) {
	var mu sync.Mutex
	mids := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The seed body is not strict JSON (a trailing comma, bare XXXX
		// numbers), so the mid is found by its text.
		mid := midOf(body)
		mu.Lock()
		mids[mid]++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	g := &generator{urls: []string{srv.URL}, run: "t", client: newClient(4)}
	res := g.open(context.Background(), 500, 100*time.Millisecond, 4)
	if res.Sent != 50 || res.OK != 50 || res.Failed != 0 {
		t.Fatalf("sent %d, ok %d, failed %d; want 50 sent and answered", res.Sent, res.OK, res.Failed)
	}
	if len(mids) != 50 {
		t.Fatalf("%d distinct mids, want 50: %v", len(mids), mids)
	}
}

func midOf(body []byte) string {
	_, rest, _ := strings.Cut(string(body), `"mid": "`)
	mid, _, _ := strings.Cut(rest, `"`)
	return mid
}

// TestSeveralURLsShareTheLoad checks that repeated -url values split the
// load: round robin in the open loop, one URL per connection in the closed.
func TestSeveralURLsShareTheLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(g *generator) Result
		want func(ok, a, b int) bool
	}{
		{"open loop", func(g *generator) Result { return g.open(context.Background(), 500, 100*time.Millisecond, 4) },
			func(ok, a, b int) bool { return ok == 50 && a == 25 && b == 25 }},
		// The closed loop stops at 40 answers; a request cut off by that
		// stop may still reach a server, so only both's share is checked.
		{"closed loop", func(g *generator) Result { return g.closed(context.Background(), 4, time.Minute, 40) },
			func(ok, a, b int) bool { return ok >= 40 && a > 0 && b > 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			hits := map[string]int{}
			var urls []string
			for _, name := range []string{"a", "b"} {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					mu.Lock()
					hits[name]++
					mu.Unlock()
					w.WriteHeader(http.StatusAccepted)
				}))
				t.Cleanup(srv.Close)
				urls = append(urls, srv.URL)
			}
			res := tc.run(&generator{urls: urls, run: "t", client: newClient(4)})
			mu.Lock()
			defer mu.Unlock()
			if res.Failed != 0 || !tc.want(res.OK, hits["a"], hits["b"]) {
				t.Fatalf("ok %d, failed %d, hits %v: the load was not split", res.OK, res.Failed, hits)
			}
		})
	}
}
