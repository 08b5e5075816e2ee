package relay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testredis"
)

// TestConcurrentDuplicates posts one mid from 50 goroutines at once, on both
// stores: exactly one is accepted, 49 are duplicates of it, and each
// destination gets one delivery.
func TestConcurrentDuplicates(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"embedded": func(t *testing.T) string { return "{embedded: {path: " + t.TempDir() + "}}" },
		"redis": func(t *testing.T) string {
			return fmt.Sprintf("{redis: {url: %q, prefix: \"dup:\"}}", testredis.Start(t).URL())
		},
	}
	for name, storeYAML := range stores {
		t.Run(name, func(t *testing.T) {
			crm, archive := newSink(t), newSink(t)
			base := startRelayOn(t, storeYAML(t), fanOut, crm, archive)
			body := seedBody(t)
			const n = 50
			answers := make([]answer, n)
			codes := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[i], answers[i] = post(t, base+"/hooks/1001", "application/json", body)
				}()
			}
			close(start)
			wg.Wait()
			accepted, dups := 0, 0
			var id string
			for i, a := range answers {
				if codes[i] != http.StatusAccepted {
					t.Fatalf("request %d: status %d %+v", i, codes[i], a)
				}
				switch a.Status {
				case "accepted":
					accepted++
					id = a.EventID
				case "duplicate":
					dups++
				}
			}
			if accepted != 1 || dups != n-1 {
				t.Fatalf("accepted %d, duplicate %d; want 1 and %d", accepted, dups, n-1)
			}
			for i, a := range answers {
				if a.EventID != id {
					t.Errorf("answer %d names event %s, want %s", i, a.EventID, id)
				}
			}
			crm.waitFor(t, 1)
			archive.waitFor(t, 1)
			// A later event arriving shows the queue drained past any copy.
			post(t, base+"/hooks/1001", "application/json", bytes.Replace(body, []byte("XXXXX\""), []byte("ZZZZZ\""), 1))
			crm.waitFor(t, 2)
			archive.waitFor(t, 2)
			if crm.count() != 2 || archive.count() != 2 {
				t.Errorf("deliveries crm %d archive %d, want 2 each", crm.count(), archive.count())
			}
		})
	}
}

// TestRedisKilledUnderLoad kills Redis while callbacks stream in and starts
// it again: every callback answered 2xx is delivered once Redis is back,
// every other one got a non-2xx, and the relay needs no restart.
func TestRedisKilledUnderLoad(t *testing.T) {
	// appendfsync always: an acknowledged write must survive the kill.
	rs := testredis.StartWith(t, "--appendfsync", "always")
	if rs.External() {
		t.Skip("needs a redis-server the test can kill")
	}
	var mu sync.Mutex
	delivered := map[string]bool{}
	dest := &sink{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		delivered[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
	}))}
	t.Cleanup(dest.Close)
	base := startRelayOn(t, fmt.Sprintf("{redis: {url: %q, prefix: \"kill:\"}}", rs.URL()), `
routes: [{webhook_id: "1001", to: [crm]}]
destinations:
  - {name: crm, url: "{{a}}", timeout: 2s, retry: {max_attempts: 1000, initial_interval: 20ms, max_interval: 200ms}}
`, dest, dest)

	client := &http.Client{Timeout: 15 * time.Second}
	var (
		seq      atomic.Int64
		okMu     sync.Mutex
		acked    []string
		accepted atomic.Int64
		refused  atomic.Int64
		stop     = make(chan struct{})
		loadDone sync.WaitGroup
	)
	var stopOnce sync.Once
	stopLoad := func() {
		stopOnce.Do(func() { close(stop) })
		loadDone.Wait()
	}
	t.Cleanup(stopLoad) // also when a wait below fails
	for range 4 {
		loadDone.Add(1)
		go func() {
			defer loadDone.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mid := fmt.Sprintf("k-%05d", seq.Add(1))
				resp, err := client.Post(base+"/hooks/1001", "application/json", strings.NewReader(`{"mid":"`+mid+`"}`))
				if err != nil {
					refused.Add(1)
					continue
				}
				var a answer
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					refused.Add(1)
					time.Sleep(5 * time.Millisecond) // pace the retries, not a wait for an event
					continue
				}
				if err := json.Unmarshal(raw, &a); err != nil || a.Status != "accepted" {
					t.Errorf("2xx answer %s for %s", raw, mid)
					continue
				}
				okMu.Lock()
				acked = append(acked, mid)
				okMu.Unlock()
				accepted.Add(1)
			}
		}()
	}
	// Each phase waits for the event it needs, however slow the machine:
	// callbacks accepted, then one refused with Redis down, then callbacks
	// accepted again once it is back.
	eventually(t, "callbacks are accepted before the kill", func() bool { return accepted.Load() >= 20 })
	refusedBefore := refused.Load()
	rs.Kill()
	eventually(t, "a callback is refused while Redis is down", func() bool { return refused.Load() > refusedBefore })
	rs.Restart()
	acceptedBack := accepted.Load()
	eventually(t, "callbacks are accepted again after the restart", func() bool { return accepted.Load() >= acceptedBack+20 })
	stopLoad()

	okMu.Lock()
	want := append([]string(nil), acked...)
	okMu.Unlock()
	if len(want) == 0 {
		t.Fatal("nothing was accepted")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, mid := range want {
			if !delivered[mid] {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged callbacks never delivered", missing, len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("acknowledged %d, refused %d", len(want), refused.Load())
}
