package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fillDLQ posts acme events to 1001 and beta events to 1002 while the
// receiver is down, and waits until all are dead-lettered.
func fillDLQ(t *testing.T, l *liveRelay, acme, beta int) {
	t.Helper()
	for i := range acme {
		l.post(t, "1001", fmt.Appendf(nil, `{"mid":"a-%d"}`, i))
	}
	for i := range beta {
		l.post(t, "1002", fmt.Appendf(nil, `{"mid":"b-%d"}`, i))
	}
	l.waitDLQ(t, acme+beta)
}

// `relay dlq replay --all` against a running relay puts every dead delivery
// back, and the receiver gets them all.
func TestDLQReplayAll(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	fillDLQ(t, l, 5, 2)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)

	code, out, errOut := relayCmd(t, "dlq", "list", "-admin", l.admin)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 8 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(out, "503") {
		t.Fatalf("dlq list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = relayCmd(t, "dlq", "-admin", l.admin, "list", "--destination", "beta-erp")
	if code != 0 || strings.Count(out, "beta-erp") != 2 || strings.Contains(out, "acme-crm") {
		t.Fatalf("dlq list --destination beta-erp: exit %d\n%s", code, out)
	}

	rcv.up.Store(true)
	code, out, errOut = relayCmd(t, "dlq", "replay", "-admin", l.admin, "--all")
	if code != 0 || strings.Count(out, "replayed dlv_") != 7 || !strings.Contains(out, "replayed 7 of 7 deliveries") {
		t.Fatalf("dlq replay --all: exit %d\n%s%s", code, out, errOut)
	}
	acme := rcv.waitFor(t, "/acme", 5)
	beta := rcv.waitFor(t, "/beta", 2)
	slices.Sort(acme)
	if acme[0] != `{"mid":"a-0"}` || acme[4] != `{"mid":"a-4"}` || len(beta) != 2 {
		t.Errorf("after the replay acme got %q, beta %q", acme, beta)
	}

	code, out, _ = relayCmd(t, "dlq", "replay", "-admin", l.admin, "--all")
	if code != 0 || !strings.Contains(out, "nothing to replay") {
		t.Errorf("second replay --all: exit %d %q", code, out)
	}
	code, out, _ = relayCmd(t, "dlq", "list", "-admin", l.admin)
	if code != 0 || !strings.Contains(out, "empty") {
		t.Errorf("dlq list after the replay: exit %d %q", code, out)
	}
}

// One destination's DLQ, and single deliveries by id: a second replay of
// the same id fails and queues nothing.
func TestDLQReplayDestinationAndIDs(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	fillDLQ(t, l, 3, 2)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)
	rcv.up.Store(true)

	code, out, errOut := relayCmd(t, "dlq", "replay", "-admin", l.admin, "--destination", "beta-erp")
	if code != 0 || !strings.Contains(out, "replayed 2 of 2 deliveries") {
		t.Fatalf("replay --destination beta-erp: exit %d\n%s%s", code, out, errOut)
	}
	rcv.waitFor(t, "/beta", 2)

	_, out, _ = relayCmd(t, "dlq", "list", "-admin", l.admin, "--json")
	var ids []string
	for _, f := range strings.Fields(out) {
		if id, ok := strings.CutPrefix(strings.Trim(f, `",`), "dlv_"); ok {
			ids = append(ids, "dlv_"+id)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("dlq list --json: %d ids in\n%s", len(ids), out)
	}
	code, out, errOut = relayCmd(t, "dlq", "replay", "-admin", l.admin, ids[0], ids[1])
	if code != 0 || !strings.Contains(out, "replayed 2 of 2") {
		t.Fatalf("replay two ids: exit %d\n%s%s", code, out, errOut)
	}
	rcv.waitFor(t, "/acme", 2)
	code, out, _ = relayCmd(t, "dlq", "replay", "-admin", l.admin, ids[0])
	if code != 1 || !strings.Contains(out, "not in the dead-letter queue") {
		t.Errorf("replaying %s again: exit %d %q, want 1 and a message", ids[0], code, out)
	}
	code, out, _ = relayCmd(t, "dlq", "delete", "-admin", l.admin, ids[2])
	if code != 0 || !strings.Contains(out, "deleted "+ids[2]) {
		t.Errorf("dlq delete: exit %d %q", code, out)
	}
	if n := l.dlqSize(t); n != 0 {
		t.Errorf("DLQ holds %d after the replays and the delete", n)
	}
}

// On a terminal the replay shows a progress bar instead of one line per
// delivery.
func TestDLQReplayProgressBar(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	fillDLQ(t, l, 4, 0)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)
	rcv.up.Store(true)

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	client := adminFlags(fs)
	if err := fs.Parse([]string{"-admin", l.admin}); err != nil {
		t.Fatal(err)
	}
	c, err := client()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	_, out, _ := relayCmd(t, "dlq", "list", "-admin", l.admin)
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	var stdout, stderr bytes.Buffer
	if code := replayIDs(context.Background(), c, ids, false, true, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "4/4") || strings.Contains(stdout.String(), "replayed dlv_") ||
		!strings.Contains(stdout.String(), "replayed 4 of 4 deliveries") {
		t.Errorf("progress output %q", stdout.String())
	}
	rcv.waitFor(t, "/acme", 4)
}

// The CLI says what is wrong when it cannot do its job.
func TestDLQErrors(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	down := "http://" + freeAddr(t)
	tests := []struct {
		name     string
		token    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"relay down", opsToken, []string{"dlq", "list", "-admin", down}, 1, "cannot reach the relay's admin API at " + down},
		{"wrong token", "nope", []string{"dlq", "list", "-admin", l.admin}, 1, "refused the token"},
		{"no token", "", []string{"dlq", "replay", "--all", "-admin", l.admin}, 1, "set $RELAY_ADMIN_TOKEN"},
		{"bad admin url", opsToken, []string{"dlq", "list", "-admin", "ftp://x"}, 2, "bad -admin"},
		{"replay nothing", opsToken, []string{"dlq", "replay", "-admin", l.admin}, 2, "--all"},
		{"ids and --all", opsToken, []string{"dlq", "replay", "--all", "-admin", l.admin, "dlv_x"}, 2, "not both"},
		{"unknown subcommand", opsToken, []string{"dlq", "purge"}, 2, `unknown command "purge"`},
		{"events of relay down", opsToken, []string{"events", "get", "-admin", down, "evt_x"}, 1, "cannot reach"},
		{"unknown event", opsToken, []string{"events", "get", "-admin", l.admin, "evt_x"}, 1, "no event evt_x"},
		{"reload with no token", "", []string{"reload", "-admin", l.admin}, 1, "wants a token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RELAY_ADMIN_TOKEN", tc.token)
			code, _, errOut := relayCmd(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestHoistAdmin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"list", "list"},
		{"-admin http://x list --destination a", "list -admin http://x --destination a"},
		{"--admin=http://x replay --all", "replay --admin=http://x --all"},
		{"list -admin http://x", "list -admin http://x"},
		{"-admin http://x", "-admin http://x"},
		{"-admin", "-admin"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := strings.Join(hoistAdmin(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("hoistAdmin(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// openOnFirstFailure dead-letters acme-crm's deliveries on their first
// failure and opens its circuit for an hour.
const openOnFirstFailure = `
routes:
  - {webhook_id: "1001", to: [acme-crm]}
destinations:
  - name: acme-crm
    url: "{{sink}}/acme"
    retry: {max_attempts: 1}
    circuit: {failures: 1, first_cooldown: 1h, cooldown: 1h}
`

// Replaying the DLQ of a destination whose circuit is open says so, and
// the replayed delivery is sent at once as the probe rather than after the
// hour's cooldown.
func TestDLQReplaySaysTheCircuitIsOpen(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, openOnFirstFailure, rcv.URL)
	fillDLQ(t, l, 1, 0)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)
	rcv.up.Store(true)
	code, out, errOut := relayCmd(t, "dlq", "replay", "-admin", l.admin, "--destination", "acme-crm")
	if code != 0 || !strings.Contains(out, "destination acme-crm: circuit open; its first replayed delivery is sent now as the probe") {
		t.Fatalf("dlq replay: exit %d\n%s%s", code, out, errOut)
	}
	rcv.waitFor(t, "/acme", 1)
}
