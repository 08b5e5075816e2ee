package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/store/bolt"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts `relay serve` as a subprocess and waits until its
// admin /healthz says it has opened its store.
func startProcess(t *testing.T, cfgPath, adminAddr string) *exec.Cmd {
	t.Helper()
	p := spawnServe(t, cfgPath, "-log-level", "debug")
	eventuallyTrue(t, "relay has opened its store", func() bool { return started(adminAddr) })
	return p.cmd
}

// started reports whether the relay's /healthz says it has opened its
// store: while it opens, /healthz answers 200 with status "starting" and
// ingest 503.
func started(adminAddr string) bool {
	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct{ Status string }
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.Status == "ok"
}

// TestSurvivesSIGKILL accepts events while the destination is down, kills
// the process with SIGKILL, brings the destination up, starts the process
// again on the same data directory, and expects every accepted event to be
// delivered.
func TestSurvivesSIGKILL(t *testing.T) {
	var up atomic.Bool
	var mu sync.Mutex
	delivered := map[string]bool{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
	}))
	defer sink.Close()

	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relay.yaml")
	cfg := fmt.Sprintf(`listen: %q
admin: {listen: %q}
store: {embedded: {path: %q}}
delivery: {poll_interval: 50ms}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: %q
    retry: {max_attempts: 1000, initial_interval: 20ms, max_interval: 200ms}
`, listen, adminAddr, filepath.Join(dir, "data"), sink.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	first := startProcess(t, cfgPath, adminAddr)
	const n = 50
	for i := range n {
		body := fmt.Sprintf(`{"mid":"m-%03d","status":"ANSWER",}`, i)
		resp, err := http.Post("http://"+listen+"/hooks/1001", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("event %d: status %d", i, resp.StatusCode)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	up.Store(true)
	startProcess(t, cfgPath, adminAddr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(delivered)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart %d of %d accepted events delivered", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range n {
		if !delivered[fmt.Sprintf("m-%03d", i)] {
			t.Errorf("m-%03d never delivered", i)
		}
	}
}

// opening is a `relay serve` process whose store stays opening: the test
// holds relay.db's lock, and bolt waits up to its open timeout for it, as
// it would read a large file for seconds.
type opening struct {
	*serveProcess
	listen, admin string // base URLs
	adminAddr     string
	held          *bolt.Store
}

// startOpening starts `relay serve` (embedded store, admin token
// "secret-token", webhook 1001 to sinkURL) with relay.db locked, and waits
// until /healthz says it is starting. The relay gives up on the lock after
// 5s (bolt.DefaultOpenTimeout): a test must let go of it well within that.
func startOpening(t *testing.T, sinkURL string) *opening {
	t.Helper()
	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	held, err := bolt.Open(data, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	cfgPath := filepath.Join(dir, "relay.yaml")
	cfg := fmt.Sprintf(`listen: %q
admin: {listen: %q, token: secret-token}
store: {embedded: {path: %q}}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - {name: crm, url: %q}
`, listen, adminAddr, data, sinkURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &opening{serveProcess: spawnServe(t, cfgPath), listen: "http://" + listen, admin: "http://" + adminAddr,
		adminAddr: adminAddr, held: held}
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _, body := call(t, "GET", o.admin+"/healthz", "")
		if code == http.StatusOK && strings.Contains(body, `"starting"`) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz while the store opens: %d %s; want 200 starting", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a seed-like callback body to url and returns the answer; a
// connection error comes back as status 0 and its text.
func call(t *testing.T, method, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"mid":"while-opening","status":"ANSWER"}`))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestServeAnswersWhileTheStoreOpens: while the store opens the listeners
// answer, /healthz 200 "starting", /readyz, ingest and the admin API 503
// with Retry-After, and nothing is served before the token check is there.
// Once the lock is let go the relay opens the store and takes and delivers
// the callback.
func TestServeAnswersWhileTheStoreOpens(t *testing.T) {
	got := make(chan string, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Idempotency-Key")
	}))
	defer sink.Close()
	o := startOpening(t, sink.URL)
	for _, tc := range []struct {
		method, url, token string
	}{
		{"POST", o.listen + "/hooks/1001", ""},
		{"GET", o.admin + "/readyz", ""},
		{"GET", o.admin + "/api/events", ""},
		{"GET", o.admin + "/api/events", "secret-token"},
		{"GET", o.admin + "/metrics", ""},
	} {
		code, h, body := call(t, tc.method, tc.url, tc.token)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "5" || !strings.Contains(body, "starting") {
			t.Errorf("%s %s while the store opens: %d Retry-After %q %s; want 503, Retry-After 5 and why",
				tc.method, tc.url, code, h.Get("Retry-After"), body)
		}
	}

	if err := o.held.Close(); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "relay has opened its store", func() bool { return started(o.adminAddr) })
	if code, _, body := call(t, "POST", o.listen+"/hooks/1001", ""); code != http.StatusAccepted {
		t.Fatalf("POST once open: %d %s", code, body)
	}
	select {
	case key := <-got:
		if key != "while-opening" {
			t.Errorf("delivered %q", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the callback taken once the store opened was not delivered")
	}
}

// TestServeStopsWhileTheStoreOpens: SIGTERM while the store opens ends the
// process with 0 at once, rather than after the read (or, here, with 1
// when bolt gives up on the lock).
func TestServeStopsWhileTheStoreOpens(t *testing.T) {
	o := startOpening(t, "http://127.0.0.1:9")
	if err := o.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay serve after SIGTERM while opening: %v, want exit 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("relay serve did not exit after SIGTERM while opening")
	}
}

// TestServeSIGHUPWhileTheStoreOpens: SIGHUP's default action ends a
// process; one that comes while the store opens must not, and reloads once
// the relay runs.
func TestServeSIGHUPWhileTheStoreOpens(t *testing.T) {
	o := startOpening(t, "http://127.0.0.1:9")
	if err := o.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := o.held.Close(); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "relay has opened its store", func() bool { return started(o.adminAddr) })
	eventuallyTrue(t, "the SIGHUP reloaded the config", func() bool {
		return strings.Contains(o.log(), "relay: SIGHUP: reloading the config")
	})
}

// TestExampleConfigRuns loads relay.example.yaml as shipped, moves only its
// listeners and data directory out of the way, and takes the seed callback.
func TestExampleConfigRuns(t *testing.T) {
	cfg, err := config.LoadFile("../../relay.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Embedded == nil || cfg.Store.Redis != nil {
		t.Fatal("the example must use the embedded store")
	}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.Embedded.Path = t.TempDir()
	r := relaytest.Start(t, cfg, relay.Options{ShutdownTimeout: 2 * time.Second})
	seed, err := os.ReadFile("../../relay/testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(r.Ingest+"/hooks/1001", "application/json", bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !bytes.Contains(b, []byte(`"deliveries":2`)) {
		t.Fatalf("seed callback: %d %s", resp.StatusCode, b)
	}
}

// -listen and -admin-listen, or $RELAY_LISTEN and $RELAY_ADMIN_LISTEN,
// replace the file's listeners (9090 collides with Prometheus).
func TestListenerOverrides(t *testing.T) {
	tests := []struct {
		name string
		args func(ingest, admin string) []string
		env  func(ingest, admin string) []string
	}{
		{"flags", func(i, a string) []string { return []string{"-listen", i, "-admin-listen", a} }, func(string, string) []string { return nil }},
		{"environment", func(string, string) []string { return nil }, func(i, a string) []string { return []string{"RELAY_LISTEN=" + i, "RELAY_ADMIN_LISTEN=" + a} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "relay.yaml")
			// The file's listeners are taken, so only the overrides can work.
			taken1, taken2 := listenOn(t), listenOn(t)
			cfg := fmt.Sprintf("listen: %s\nadmin: {listen: %s}\nstore: {embedded: {path: %s}}\nroutes: [{webhook_id: '1', to: [a]}]\ndestinations: [{name: a, url: 'http://127.0.0.1:1/'}]\n",
				taken1, taken2, filepath.Join(dir, "data"))
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			ingest, admin := freeAddr(t), freeAddr(t)
			cmd := exec.Command(relayBin, append([]string{"serve", "-config", cfgPath}, tt.args(ingest, admin)...)...)
			cmd.Env = append(os.Environ(), tt.env(ingest, admin)...)
			var logs bytes.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
				if t.Failed() {
					t.Logf("relay log:\n%s", logs.String())
				}
			})
			code, out, errOut := relayCmd(t, "health", "-wait", "30s", "-admin", "http://"+admin)
			if code != 0 {
				t.Fatalf("health on the overriding admin address: exit %d %s%s", code, out, errOut)
			}
			resp, err := http.Post("http://"+ingest+"/hooks/1", "application/json", bytes.NewReader([]byte(`{"mid":"x"}`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("POST to the overriding ingest address: %d", resp.StatusCode)
			}
		})
	}
}

// listenOn holds a loopback port for the rest of the test and returns it.
func listenOn(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
