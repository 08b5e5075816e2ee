package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/admin"
)

// The operator's path: find a callback by its mid, see its attempts.
func TestEventsFindByMidAndGet(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, `
routes:
  - {webhook_id: "1001", to: [acme-crm]}
destinations:
  - name: acme-crm
    url: "{{sink}}/acme"
    retry: {max_attempts: 2, initial_interval: 10ms}
`, rcv.URL)
	seed, err := os.ReadFile("../../relay/testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	id := l.post(t, "1001", seed)
	l.post(t, "1001", []byte(`{"mid":"other"}`))
	l.waitDLQ(t, 2)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)

	code, out, errOut := relayCmd(t, "events", "list", "-admin", l.admin, "--mid", "1234-1333-XXXXX")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], id) || !strings.Contains(lines[1], "acme-crm:dead") {
		t.Fatalf("events list --mid: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = relayCmd(t, "events", "list", "-admin", l.admin, "--status", "dead", "--since", "1h")
	if code != 0 || strings.Count(out, "evt_") != 2 {
		t.Errorf("events list --status dead: exit %d\n%s", code, out)
	}

	code, out, _ = relayCmd(t, "events", "list", "-admin", l.admin, "-q", "--mid", "1234-1333-XXXXX")
	if code != 0 || out != id+"\n" {
		t.Errorf("events list -q: exit %d %q, want just the id", code, out)
	}

	code, out, errOut = relayCmd(t, "events", "get", "-admin", l.admin, id)
	if code != 0 {
		t.Fatalf("events get: exit %d %s", code, errOut)
	}
	for _, want := range []string{
		"event       " + id, "dedupe key  1234-1333-XXXXX", "status      dead", "route       1001 -> acme-crm",
		`"status": "ANSWER",`, "delivery dlv_", "to acme-crm: dead after 2 attempts", "  1  ", "  2  ", "503",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("events get output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = relayCmd(t, "events", "get", "-admin", l.admin, "--json", id)
	var ev admin.EventView
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.ID != id || len(ev.Deliveries[0].AttemptLog) != 2 ||
		ev.Deliveries[0].AttemptLog[1].Status != 503 || ev.Body != string(seed) {
		t.Errorf("events get --json: exit %d\n%s", code, out)
	}
}

// `relay reload` applies a good file and lists every problem of a bad one.
func TestReloadCommand(t *testing.T) {
	rcv := newReceiver(t)
	rcv.up.Store(true)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)

	l.write(t, deadOnFirstFailure+`  - name: gamma
    url: "{{sink}}/gamma"
`, rcv.URL)
	code, out, errOut := relayCmd(t, "reload", "-admin", l.admin)
	if code != 0 || !strings.Contains(out, "3 destinations") || !strings.Contains(out, "added: gamma") {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}

	l.write(t, deadOnFirstFailure+"  - name: delta\n    url: not-a-url\n    retyr: {}\n", rcv.URL)
	code, _, errOut = relayCmd(t, "reload", "-admin", l.admin)
	if code != 1 || !strings.Contains(errOut, l.cfgPath+":17: ") || !strings.Contains(errOut, l.cfgPath+":18: ") {
		t.Fatalf("bad reload: exit %d\n%s", code, errOut)
	}
	// Still the good config: 1001 is delivered.
	l.post(t, "1001", []byte(`{"mid":"after"}`))
	rcv.waitFor(t, "/acme", 1)
}
