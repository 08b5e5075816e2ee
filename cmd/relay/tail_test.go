package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/admin"
)

// tailProc starts the relay binary's `events tail` with args and returns
// its stdout once it says it is connected (so what happens next is seen).
func tailProc(t *testing.T, token string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, relayBin, append([]string{"events", "tail"}, args...)...)
	cmd.Env = append(os.Environ(), "RELAY_ADMIN_TOKEN="+token)
	var out bytes.Buffer
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(errPipe).ReadString('\n')
	if err != nil || !strings.Contains(line, "connected to") {
		t.Fatalf("events tail said %q, %v; want it connected", line, err)
	}
	go func() { _, _ = bufio.NewReader(errPipe).WriteTo(&bytes.Buffer{}) }()
	return cmd, &out
}

// `relay events tail` prints each callback and attempt as it happens.
func TestEventsTail(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)

	cmd, out := tailProc(t, opsToken, "-admin", l.admin, "--count", "2")
	id := l.post(t, "1001", []byte(`{"mid":"tail-1"}`))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("events tail --count 2: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], "callback  accepted") || !strings.Contains(lines[0], id) || !strings.Contains(lines[0], "mid tail-1 -> acme-crm") ||
		!strings.Contains(lines[1], "attempt   dead") || !strings.Contains(lines[1], "acme-crm #1  503") {
		t.Errorf("events tail printed:\n%s", out)
	}

	// --json and --destination: only beta-erp's items, as JSON lines.
	cmd, out = tailProc(t, opsToken, "-admin", l.admin, "--count", "2", "--json", "--destination", "beta-erp")
	l.post(t, "1001", []byte(`{"mid":"tail-2"}`))
	beta := l.post(t, "1002", []byte(`{"mid":"tail-3"}`))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("events tail --json: %v\n%s", err, out)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var it admin.TailItem
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if it.EventID != beta {
			t.Errorf("item of event %s, want only %s (beta-erp's)", it.EventID, beta)
		}
		kinds = append(kinds, it.Kind)
	}
	// The callback's item is published when its accept returns, and the
	// dispatcher may finish the first attempt before that goroutine runs
	// again, so the two may come in either order (docs/console.md).
	slices.Sort(kinds)
	if strings.Join(kinds, ",") != "attempt,event" {
		t.Errorf("items %v, want the callback and its attempt", kinds)
	}
}

func TestEventsTailRefusesWrongToken(t *testing.T) {
	l := startLive(t, deadOnFirstFailure, "http://127.0.0.1:1")
	t.Setenv("RELAY_ADMIN_TOKEN", "wrong")
	code, _, errOut := relayCmd(t, "events", "tail", "-admin", l.admin)
	if code != 1 || !strings.Contains(errOut, "refused the token") {
		t.Errorf("events tail with a wrong token: exit %d %s", code, errOut)
	}
}
