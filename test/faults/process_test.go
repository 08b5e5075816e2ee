package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// relayProc is one `relay serve` (or `relay agent`) child process that a
// scenario may kill, stop and start again on the same config, ports and
// store. Its output, across every start, goes to one log file.
type relayProc struct {
	t       testing.TB
	name    string
	args    []string
	listen  string // ingest host:port ("" for an agent)
	admin   string // admin host:port ("" for an agent)
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, set before done closes
}

// relaySpec is what a relay's config file says.
type relaySpec struct {
	name string
	// Exactly one of embedded (a directory) and redisURL.
	embedded string
	redisURL string
	sinkURL  string
	// timeout is every destination's timeout; lease the delivery lease
	// (delivery.lease), which bounds how soon a survivor takes over.
	timeout, lease time.Duration
	// agent and agentToken, when set, make every destination one that
	// the agent of that name delivers.
	agent, agentToken string
}

// destinations are the routed destinations of every scenario's webhook:
// two, so fan-out is part of every ledger.
var destinations = []string{"crm", "archive"}

const webhookID = "1001"

// config returns the YAML of s on the given listeners.
func (s relaySpec) config(listen, admin string) string {
	st := fmt.Sprintf("{embedded: {path: %q}}", s.embedded)
	if s.redisURL != "" {
		st = fmt.Sprintf("{redis: {url: %q, prefix: \"faults:\"}}", s.redisURL)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin: {listen: %q}\nstore: %s\n", listen, admin, st)
	fmt.Fprintf(&b, "delivery: {poll_interval: 100ms, lease: %s}\n", s.lease)
	// Room for the 1,000 simultaneous posts of TestConcurrentDuplicates,
	// so that they all race for the dedupe claim instead of most of them
	// being turned away as busy.
	b.WriteString("ingest: {max_concurrent: 2048}\n")
	via := ""
	if s.agent != "" {
		fmt.Fprintf(&b, "agents: [{name: %s, token: %q}]\n", s.agent, s.agentToken)
		via = "\n    agent: " + s.agent
	}
	fmt.Fprintf(&b, "routes:\n  - {webhook_id: %q, to: [%s]}\ndestinations:\n", webhookID, strings.Join(destinations, ", "))
	for _, d := range destinations {
		// Retries never run out within a scenario, and the circuit's
		// cooldown is short, so a drain waits for the relay, not a timer.
		fmt.Fprintf(&b, `  - name: %s%s
    url: "%s/d/%s"
    timeout: %s
    headers: {X-Instance: %q}
    concurrency: 8
    retry: {max_attempts: 100000, initial_interval: 50ms, max_interval: 1s, max_age: 24h}
    circuit: {failures: 20, cooldown: 1s}
`, d, via, s.sinkURL, d, s.timeout, s.name)
	}
	return b.String()
}

// startRelay writes spec's config on two free loopback ports and starts
// `relay serve` on it, waiting until it has opened its store.
func startRelay(t testing.TB, spec relaySpec) *relayProc {
	t.Helper()
	if spec.timeout == 0 {
		spec.timeout = 2 * time.Second
	}
	if spec.lease == 0 {
		spec.lease = 3 * time.Second
	}
	dir := t.TempDir()
	p := &relayProc{t: t, name: spec.name, listen: freeAddr(t), admin: freeAddr(t), logPath: filepath.Join(dir, "relay.log")}
	cfg := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfg, []byte(spec.config(p.listen, p.admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.args = []string{"serve", "-config", cfg, "-log-level", "warn"}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, p.logTail(40))
		}
	})
	p.start()
	return p
}

// startAgent starts `relay agent` against the relay at ingest.
func startAgent(t testing.TB, name, token, ingest string) *relayProc {
	t.Helper()
	p := &relayProc{t: t, name: "agent " + name, logPath: filepath.Join(t.TempDir(), "agent.log"),
		args: []string{"agent", "-server", ingest, "-name", name, "-token", token, "-insecure", "-concurrency", "32", "-log-level", "warn"}}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, p.logTail(40))
		}
	})
	p.start()
	return p
}

// ingestURL is the base URL providers post to.
func (p *relayProc) ingestURL() string { return "http://" + p.listen }

// adminURL is the base URL of /metrics and the admin API.
func (p *relayProc) adminURL() string { return "http://" + p.admin }

// start runs the process and, for a relay, waits until /healthz answers ok
// (its store is open).
func (p *relayProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(relayBin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(done)
	}()
	if p.admin == "" {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			p.t.Fatalf("%s exited at start: %v\n%s", p.name, p.err, p.logTail(20))
		default:
		}
		// /healthz answers "starting" while the store opens, "ok" after.
		resp, err := http.Get(p.adminURL() + "/healthz")
		if err == nil {
			var h struct{ Status string }
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && h.Status == "ok" {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: /healthz did not answer ok within 30s", p.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *relayProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// term sends SIGTERM and waits (bounded) for the process to exit, returning
// its exit error (nil for exit 0).
func (p *relayProc) term(within time.Duration) error {
	p.t.Helper()
	if p.cmd == nil {
		return errors.New("not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		p.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.name, within)
	}
	p.cmd = nil
	return p.err
}

// exited reports whether the process has ended on its own, with its error.
func (p *relayProc) exited() (bool, error) {
	if p.cmd == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func (p *relayProc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

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
