package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one run measured; bench/run decodes it.
type Result struct {
	Mode    string  `json:"mode"`
	Sent    int     `json:"sent"`
	OK      int     `json:"ok"`     // answered 2xx
	Failed  int     `json:"failed"` // other status or transport error
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"` // 2xx answers per second
	// Latency percentiles in milliseconds, over every request sent.
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// Late is how many requests started more than a millisecond after their
	// scheduled time because every connection was busy (open loop only).
	Late int `json:"late"`
}

func main() {
	var urls urlList
	flag.Var(&urls, "url", "URL to POST to; repeated, requests go round robin (closed loop: each connection keeps one)")
	conns := flag.Int("conns", 64, "connections (closed loop) or most requests in flight (open loop)")
	rate := flag.Float64("rate", 0, "requests per second on a fixed schedule; 0 = closed loop")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	count := flag.Int("count", 0, "closed loop: stop after this many 2xx answers (0 = run for -duration)")
	run := flag.String("run", strconv.FormatInt(time.Now().UnixNano(), 36), "prefix of every mid, so runs never collide")
	flag.Parse()
	if len(urls) == 0 || *conns <= 0 {
		fmt.Fprintln(os.Stderr, "load: -url and a positive -conns are required")
		os.Exit(2)
	}
	g := &generator{urls: urls, run: *run, client: newClient(*conns)}
	var res Result
	if *rate > 0 {
		res = g.open(context.Background(), *rate, *dur, *conns)
	} else {
		res = g.closed(context.Background(), *conns, *dur, *count)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
		},
	}
}

// urlList is the repeatable -url flag.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, " ") }

func (l *urlList) Set(v string) error {
	if v == "" {
		return errors.New("empty URL")
	}
	*l = append(*l, v)
	return nil
}

type generator struct {
	urls   []string // several relays sharing one store get their share each
	run    string
	client *http.Client
	n      atomic.Uint64
}

// body is the seed callback's example, trailing comma included, with a
// unique mid.
func (g *generator) body() []byte {
	mid := g.run + "-" + strconv.FormatUint(g.n.Add(1), 10)
	return []byte(`{
      "bridge": 91806828XXXX,
      "from": 91891952XXXX,
      "to": 91886713XXXX,
      "source": "OBD",
      "mid": "` + mid + `",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}`)
}

func (g *generator) post(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(g.body()))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// tally collects outcomes from many goroutines.
type tally struct {
	mu   sync.Mutex
	lat  []time.Duration
	ok   int
	fail int
	late int
}

func (t *tally) add(d time.Duration, ok, late bool) {
	t.mu.Lock()
	t.lat = append(t.lat, d)
	if ok {
		t.ok++
	} else {
		t.fail++
	}
	if late {
		t.late++
	}
	t.mu.Unlock()
}

func (t *tally) result(mode string, elapsed time.Duration) Result {
	slices.Sort(t.lat)
	r := Result{Mode: mode, Sent: len(t.lat), OK: t.ok, Failed: t.fail, Late: t.late, Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		r.Rate = float64(t.ok) / elapsed.Seconds()
	}
	r.P50, r.P99, r.P999 = percentile(t.lat, 0.50), percentile(t.lat, 0.99), percentile(t.lat, 0.999)
	if n := len(t.lat); n > 0 {
		r.Max = ms(t.lat[n-1])
	}
	return r
}

// percentile is the nearest-rank percentile of sorted, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// closed runs conns loops that each POST, wait for the answer and POST again.
func (g *generator) closed(ctx context.Context, conns int, dur time.Duration, count int) Result {
	var t tally
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var okCount atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		url := g.urls[i%len(g.urls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				ok := g.post(ctx, url)
				if ctx.Err() != nil && !ok {
					return // cut off by the end of the run, not the server's failure
				}
				t.add(time.Since(t0), ok, false)
				if ok && count > 0 && okCount.Add(1) >= int64(count) {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	return t.result("closed", time.Since(start))
}

// open sends request i at start + i/rate. At most conns requests are in
// flight; a request due while all are busy waits for a free one, and that
// wait is part of its latency.
func (g *generator) open(ctx context.Context, rate float64, dur time.Duration, conns int) Result {
	var t tally
	n := int(rate * dur.Seconds())
	type slot struct {
		at  time.Time
		url string
	}
	due := make(chan slot, n)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range due {
				late := time.Since(s.at) > time.Millisecond
				ok := g.post(ctx, s.url)
				t.add(time.Since(s.at), ok, late)
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- slot{at, g.urls[i%len(g.urls)]}
	}
	close(due)
	wg.Wait()
	return t.result("open", time.Since(start))
}
