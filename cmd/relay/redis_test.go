package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testredis"
)

// countingSink counts deliveries per Idempotency-Key. While hold is set, it
// keeps requests from the instance named in X-Instance open until the
// client goes away (the instance is killed).
type countingSink struct {
	mu     sync.Mutex
	count  map[string]int
	holdA  atomic.Bool
	heldA  atomic.Int64
	server *httptest.Server
}

func newCountingSink(t *testing.T) *countingSink {
	s := &countingSink{count: map[string]int{}}
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body first lets net/http notice the client going
		// away, which ends r.Context().
		io.Copy(io.Discard, r.Body)
		if s.holdA.Load() && r.Header.Get("X-Instance") == "a" {
			s.heldA.Add(1)
			<-r.Context().Done()
			return
		}
		s.mu.Lock()
		s.count[r.Header.Get("Idempotency-Key")]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.server.Close)
	return s
}

func (s *countingSink) get(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[key]
}

// waitAll waits until every key has been delivered at least once.
func (s *countingSink) waitAll(t *testing.T, keys []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := 0
		for _, k := range keys {
			if s.get(k) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never delivered", missing, len(keys))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeInstanceConfig writes the config of one relay process on the shared
// Redis; the instance name goes out as a destination header so the sink can
// tell the processes apart.
func writeInstanceConfig(t *testing.T, name, redisURL, sinkURL string) (cfgPath, listen, admin string) {
	// A stopped Redis's port is free, so freeAddr may hand it out: keep the
	// relay's listeners off it, or the relay would talk HTTP to itself.
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	redisAddr := u.Host
	for listen == "" || listen == redisAddr {
		listen = freeAddr(t)
	}
	for admin == "" || admin == redisAddr || admin == listen {
		admin = freeAddr(t)
	}
	cfgPath = filepath.Join(t.TempDir(), name+".yaml")
	cfg := fmt.Sprintf(`listen: %q
admin: {listen: %q}
store: {redis: {url: %q, prefix: "shared:"}}
delivery: {poll_interval: 50ms, lease: 500ms}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: %q
    timeout: 1s
    concurrency: 4
    headers: {X-Instance: %q}
    retry: {max_attempts: 1000, initial_interval: 20ms, max_interval: 200ms}
`, listen, admin, redisURL, sinkURL, name)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, listen, admin
}

// postMid posts a callback with the given mid and returns the answer's status.
func postMid(t *testing.T, listen, mid string) string {
	resp, err := http.Post("http://"+listen+"/hooks/1001", "application/json",
		strings.NewReader(`{"mid":"`+mid+`","status":"ANSWER",}`))
	if err != nil {
		t.Errorf("POST %s: %v", mid, err)
		return ""
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a struct{ Status string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &a) != nil {
		t.Errorf("POST %s: %d %s", mid, resp.StatusCode, raw)
	}
	return a.Status
}

// TestTwoInstancesShareRedis runs two relay processes on one Redis: 1,000
// unique callbacks posted alternately to both plus 200 provider retries are
// delivered once each; then one process is killed with SIGKILL while it
// holds deliveries, and the other delivers them after the lease expires.
func TestTwoInstancesShareRedis(t *testing.T) {
	rs := testredis.Start(t)
	sink := newCountingSink(t)
	cfgA, listenA, adminA := writeInstanceConfig(t, "a", rs.URL(), sink.server.URL)
	cfgB, listenB, adminB := writeInstanceConfig(t, "b", rs.URL(), sink.server.URL)
	a := startProcess(t, cfgA, adminA)
	startProcess(t, cfgB, adminB)
	listens := []string{listenA, listenB}

	const unique, repeats = 1000, 200
	mids := make([]string, unique)
	for i := range mids {
		mids[i] = fmt.Sprintf("u-%04d", i)
	}
	statuses := make([]string, unique+repeats)
	// post sends callbacks lo..hi-1 from 8 goroutines: first the originals,
	// alternating instances; then provider retries of every fifth original,
	// each to the instance that did not take it first.
	post := func(lo, hi int) {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if i < unique {
						statuses[i] = postMid(t, listens[i%2], mids[i])
						continue
					}
					j := (i - unique) * 5
					statuses[i] = postMid(t, listens[(j+1)%2], mids[j])
				}
			}()
		}
		for i := lo; i < hi; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	post(0, unique)
	post(unique, unique+repeats)
	for i, s := range statuses {
		want := "accepted"
		if i >= unique {
			want = "duplicate"
		}
		if s != want {
			t.Fatalf("callback %d answered %q, want %q", i, s, want)
		}
	}
	sink.waitAll(t, mids, 60*time.Second)
	for _, m := range mids {
		if n := sink.get(m); n != 1 {
			t.Errorf("%s delivered %d times, want once", m, n)
		}
	}

	// Takeover: instance a holds deliveries open at the sink and is killed.
	sink.holdA.Store(true)
	late := make([]string, 20)
	for i := range late {
		late[i] = fmt.Sprintf("t-%02d", i)
		postMid(t, listens[i%2], late[i])
	}
	deadline := time.Now().Add(20 * time.Second)
	for sink.heldA.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("instance a never took a delivery")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	sink.waitAll(t, late, 30*time.Second)
}

// TestServeStartsBeforeRedis starts `relay serve` while its Redis is down:
// the process comes up, answers ingest and /readyz with 503, and once
// Redis starts accepts and delivers. go-redis's own log lines reach the
// relay's structured log instead of stderr as plain text.
func TestServeStartsBeforeRedis(t *testing.T) {
	rs := testredis.Start(t)
	rs.Stop() // skips the test with an external server
	sink := newCountingSink(t)
	cfg, listen, admin := writeInstanceConfig(t, "a", rs.URL(), sink.server.URL)
	p := startProcess(t, cfg, admin)

	post := func() int {
		resp, err := http.Post("http://"+listen+"/hooks/1001", "application/json",
			strings.NewReader(`{"mid":"early","status":"ANSWER",}`))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Fatalf("POST with Redis down answered %d, want 503", code)
	}
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down answered %d, want 503", resp.StatusCode)
	}

	rs.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for post() != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("ingest never accepted after Redis started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sink.waitAll(t, []string{"early"}, 30*time.Second)

	raw, err := os.ReadFile(p.Stderr.(*os.File).Name())
	if err != nil {
		t.Fatal(err)
	}
	logs := string(raw)
	for _, want := range []string{"Redis does not answer at start", "component=go-redis"} {
		if !strings.Contains(logs, want) {
			t.Errorf("relay log lacks %q:\n%s", want, logs)
		}
	}
	for line := range strings.Lines(logs) {
		if strings.HasPrefix(line, "redis: ") {
			t.Errorf("go-redis logged past slog: %s", line)
		}
	}
}
