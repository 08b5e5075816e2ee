package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveProcess is `relay serve` as a child process with its log in a file.
type serveProcess struct {
	cmd     *exec.Cmd
	logPath string
}

// spawnServe starts `relay serve -config cfgPath` with args after it, its
// output in a log file that a failed test prints; the process is killed
// when the test ends.
func spawnServe(t *testing.T, cfgPath string, args ...string) *serveProcess {
	t.Helper()
	p := &serveProcess{logPath: filepath.Join(t.TempDir(), "relay.log")}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(relayBin, append([]string{"serve", "-config", cfgPath}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		logf.Close()
		if t.Failed() {
			t.Logf("relay log:\n%s", p.log())
		}
	})
	return p
}

// startServe spawns `relay serve` and waits until it has opened its store.
func startServe(t *testing.T, cfgPath, adminAddr string) *serveProcess {
	t.Helper()
	p := spawnServe(t, cfgPath)
	eventuallyTrue(t, "relay has opened its store", func() bool { return started(adminAddr) })
	return p
}

func (p *serveProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func eventuallyTrue(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postAnswer posts a callback and returns the decoded answer.
func postAnswer(t testing.TB, url string, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a map[string]any
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a
}

// SIGHUP reloads the file: a good one takes effect, a bad one is logged
// problem by problem with FILE:LINE and the running config stays. SIGTERM
// drains and exits 0.
func TestServeSIGHUPAndSIGTERM(t *testing.T) {
	rcv := newReceiver(t)
	rcv.up.Store(true)
	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relay.yaml")
	header := fmt.Sprintf("listen: %q\nadmin: {listen: %q}\nstore: {embedded: {path: %q}}\n",
		listen, adminAddr, filepath.Join(dir, "data"))
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(header+strings.ReplaceAll(body, "{{sink}}", rcv.URL)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const dest = `destinations:
  - {name: crm, url: "{{sink}}/crm"}
`
	write("routes:\n  - {webhook_id: \"1001\", to: [crm]}\n" + dest)
	p := startServe(t, cfgPath, adminAddr)
	hook := "http://" + listen + "/hooks/1002"
	if code, a := postAnswer(t, hook, `{"mid":"before"}`); code != 202 || a["parked"] != true {
		t.Fatalf("1002 before the reload: %d %v, want parked", code, a)
	}

	write("routes:\n  - {webhook_id: \"1001\", to: [crm]}\n  - {webhook_id: \"1002\", to: [crm]}\n" + dest)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	n := 0
	eventuallyTrue(t, "1002 is routed after SIGHUP", func() bool {
		n++
		_, a := postAnswer(t, hook, fmt.Sprintf(`{"mid":"after-%d"}`, n))
		return a["deliveries"] == 1.0
	})
	rcv.waitFor(t, "/crm", 1)

	write(`routes:
  - {webhook_id: "1002", to: [nowhere]}
destinations:
  - name: crm
    url: "{{sink}}/crm"
    retyr: {}
`)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the refused reload is logged", func() bool {
		return strings.Contains(p.log(), "reload refused")
	})
	for _, line := range []string{cfgPath + ":5: ", cfgPath + ":9: "} {
		if !strings.Contains(p.log(), line) {
			t.Errorf("log has no problem line %q", line)
		}
	}
	if _, a := postAnswer(t, hook, `{"mid":"still"}`); a["deliveries"] != 1.0 {
		t.Errorf("after a refused reload 1002 answered %v, want the running route", a)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("relay serve after SIGTERM: %v, want exit 0", err)
	}
	if !strings.Contains(p.log(), "relay: stopped") {
		t.Error("no 'relay: stopped' in the log")
	}
}
