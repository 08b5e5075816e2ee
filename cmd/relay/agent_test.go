package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/agent/agenttest"
)

func TestAgentFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"plain http refused", []string{"-server", "http://127.0.0.1:1", "-name", "a", "-token", "t"}, 2, "-insecure"},
		{"plain http with -insecure", []string{"-server", "http://127.0.0.1:1", "-name", "a", "-token", "t", "-insecure"}, 0, ""},
		{"no name", []string{"-server", "https://relay.example.com", "-token", "t"}, 2, "required"},
		{"no token", []string{"-server", "https://relay.example.com", "-name", "a"}, 2, "required"},
		{"not a URL", []string{"-server", "relay.example.com", "-name", "a", "-token", "t"}, 2, "not an absolute"},
		{"credentials in URL", []string{"-server", "https://u:p@relay.example.com", "-name", "a", "-token", "t"}, 2, "credentials"},
		{"bad CA file", []string{"-server", "https://relay.example.com", "-name", "a", "-token", "t", "-ca", notPEM}, 1, "no PEM certificate"},
		{"bad receiver CA file", []string{"-server", "https://relay.example.com", "-name", "a", "-token", "t", "-receiver-ca", notPEM}, 1, "-receiver-ca: agent: CA file"},
		{"missing receiver CA file", []string{"-server", "https://relay.example.com", "-name", "a", "-token", "t", "-receiver-ca", filepath.Join(dir, "none.pem")}, 1, "-receiver-ca: agent: read CA file"},
		{"unknown flag", []string{"-sever", "https://relay.example.com"}, 2, "-sever"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RELAY_AGENT_TOKEN", "")
			// A cancelled context: an agent that starts stops at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"agent"}, tc.args...), &out, &errOut)
			if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, errOut.String(), tc.wantCode, tc.wantErr)
			}
		})
	}
}

// TestAgentProcess runs the `relay agent` binary the way a user would:
// the relay's URL is an https name, HTTPS_PROXY points at a CONNECT proxy,
// the relay's certificate comes from a private CA given with -ca, and the
// token comes from $RELAY_AGENT_TOKEN. A callback must reach the private
// sink through all of that, and SIGTERM must stop the agent cleanly.
//
// The name is example.com because Go's ProxyFromEnvironment never proxies
// loopback addresses and the test certificate holds that name; the proxy
// routes it to the TLS front of the in-process relay.
func TestAgentProcess(t *testing.T) {
	got := make(chan string, 10)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	t.Cleanup(sink.Close)
	base := startAgentRelay(t, sink.URL)

	u, _ := url.Parse(base)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	front.StartTLS()
	t.Cleanup(front.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := agenttest.NewProxy(t)
	proxy.Routes = map[string]string{"example.com:443": front.Listener.Addr().String()}

	cmd := exec.Command(relayBin, "agent", "-server", "https://example.com", "-name", "office-1", "-ca", caFile, "-log-level", "debug")
	cmd.Env = append(os.Environ(), "HTTPS_PROXY="+proxy.URL.String(), "NO_PROXY=", "no_proxy=", "RELAY_AGENT_TOKEN=tok-office-0123456789")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once Wait returned: logs is complete
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})

	resp, err := http.Post(base+"/hooks/1001", "application/json", strings.NewReader(`{"mid":"m-proc"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case body := <-got:
		if body != `{"mid":"m-proc"}` {
			t.Errorf("sink got %q", body)
		}
	case <-exited:
		t.Fatalf("agent exited: %v", waitErr)
	case <-time.After(30 * time.Second):
		t.Fatal("callback did not reach the sink through the agent")
	}
	if proxy.Tunnels() == 0 {
		t.Error("the agent did not use HTTPS_PROXY")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("agent exit after SIGTERM: %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}

// startAgentRelay runs a relay in-process whose destination "office" is
// served by agent office-1, and returns its ingest URL.
func startAgentRelay(t *testing.T, sinkURL string) string {
	t.Helper()
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n" +
		"store: {embedded: {path: " + t.TempDir() + "}}\n" +
		"agents: [{name: office-1, token: tok-office-0123456789}]\n" +
		"routes: [{webhook_id: \"1001\", to: [office]}]\n" +
		"destinations: [{name: office, agent: office-1, url: \"" + sinkURL + "\"}]\n"
	cfg, err := config.Load([]byte(text), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return relaytest.Start(t, cfg, relay.Options{}).Ingest
}
