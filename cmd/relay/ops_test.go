package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
)

// opsToken is the admin token of the relays these tests start.
const opsToken = "ops-token"

// liveRelay is a relay running in this process from a config file.
type liveRelay struct {
	ingest, admin string // base URLs
	cfgPath       string
	header        string // the config's first lines: listeners and store
}

// startLive writes a config (listeners on loopback port 0, an embedded
// store, the admin token opsToken, then body) and runs a relay from it until
// the test ends. {{sink}} in body is replaced by sinkURL.
func startLive(t *testing.T, body, sinkURL string) *liveRelay {
	t.Helper()
	dir := t.TempDir()
	l := &liveRelay{cfgPath: filepath.Join(dir, "relay.yaml")}
	l.header = "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0, token: " + opsToken + "}\n" +
		"store: {embedded: {path: '" + filepath.Join(dir, "data") + "'}}\n" +
		"delivery: {poll_interval: 50ms}\n"
	l.write(t, body, sinkURL)
	cfg, err := config.LoadFile(l.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, cfg, relay.Options{})
	l.ingest, l.admin = r.Ingest, r.Admin
	return l
}

// write rewrites the config file with the same listeners and store.
func (l *liveRelay) write(t testing.TB, body, sinkURL string) {
	t.Helper()
	text := l.header + strings.ReplaceAll(body, "{{sink}}", sinkURL)
	if err := os.WriteFile(l.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// post sends a callback and returns the event id of a 2xx answer.
func (l *liveRelay) post(t testing.TB, webhookID string, body []byte) string {
	t.Helper()
	resp, err := http.Post(l.ingest+"/hooks/"+webhookID, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		EventID string `json:"event_id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || json.Unmarshal(raw, &a) != nil {
		t.Fatalf("POST /hooks/%s: %d %s", webhookID, resp.StatusCode, raw)
	}
	return a.EventID
}

// dlqSize asks the admin API how many deliveries are dead.
func (l *liveRelay) dlqSize(t testing.TB) int {
	t.Helper()
	req, _ := http.NewRequest("GET", l.admin+"/api/dlq?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var items []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&items); err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// waitDLQ polls until n deliveries are dead.
func (l *liveRelay) waitDLQ(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.dlqSize(t) != n {
		if time.Now().After(deadline) {
			t.Fatalf("DLQ has %d deliveries, want %d", l.dlqSize(t), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is a destination that answers 503 until up is set, and records
// the bodies it accepted.
type receiver struct {
	*httptest.Server
	up   atomic.Bool
	mu   sync.Mutex
	got  map[string][]string // path -> bodies accepted
	seen chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{got: map[string][]string{}, seen: make(chan struct{}, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !r.up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], string(body))
		r.mu.Unlock()
		r.seen <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

// waitFor blocks until path has accepted n bodies and returns them.
func (r *receiver) waitFor(t testing.TB, path string, n int) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got[path]...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.seen:
		case <-deadline:
			t.Fatalf("%s accepted %d bodies, want %d", path, len(got), n)
		}
	}
}

// relayCmd runs the relay CLI in this process and returns its exit code and
// output.
func relayCmd(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// deadOnFirstFailure routes two clients to the receiver; every failure
// dead-letters at once.
const deadOnFirstFailure = `
routes:
  - {webhook_id: "1001", to: [acme-crm]}
  - {webhook_id: "1002", to: [beta-erp]}
destinations:
  - name: acme-crm
    url: "{{sink}}/acme"
    retry: {max_attempts: 1}
  - name: beta-erp
    url: "{{sink}}/beta"
    retry: {max_attempts: 1}
`
