package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/state"
)

// relay send posts a file or the sample to a running relay; relay
// destinations and relay parked show what came of it.
func TestSendDestinationsParked(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	t.Setenv("RELAY_ADMIN_TOKEN", opsToken)
	body := filepath.Join(t.TempDir(), "callback.json")
	if err := os.WriteFile(body, []byte(`{"mid":"send-1","status":"ANSWER"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"a file", []string{"send", "-server", l.ingest, "-webhook", "1001", body}, 0, []string{`202 {"status":"accepted"`, `"deliveries":1`}},
		{"the same file again", []string{"send", body, "-webhook", "1001", "-server", l.ingest}, 0, []string{`202 {"status":"duplicate"`}},
		{"the sample to no route", []string{"send", "-server", l.ingest, "-webhook", "4040"}, 0, []string{`"parked":true`}},
		{"parked list", []string{"parked", "list", "-admin", l.admin}, 0, []string{"EVENT", "4040", "1234-1333-XXXXX"}},
		{"parked replay of a webhook with no route", []string{"parked", "replay", "--webhook-id", "4040", "-admin", l.admin}, 0, []string{"routed 0 parked callbacks", "1 still match no route"}},
		{"destinations", []string{"destinations", "-admin", l.admin}, 0, []string{"DESTINATION", "acme-crm", "beta-erp", "closed"}},
		{"a relay that is not there", []string{"send", "-server", "http://" + freeAddr(t), "-webhook", "1001"}, 1, []string{"cannot reach the relay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := relayCmd(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
	code, out, _ := relayCmd(t, "destinations", "--json", "-admin", l.admin)
	var states []state.Destination
	if code != 0 || json.Unmarshal([]byte(out), &states) != nil || len(states) != 2 {
		t.Errorf("destinations --json: exit %d\n%s", code, out)
	}
}
