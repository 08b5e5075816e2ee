package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
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
// admin /healthz answers.
func startProcess(t *testing.T, cfgPath, adminAddr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(relayBin, "serve", "-config", cfgPath, "-log-level", "debug")
	logf, err := os.Create(filepath.Join(t.TempDir(), "relay.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("relay log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("relay did not come up")
	return nil
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
