package relay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/admin"
)

const portalConfig = `
routes:
  - {webhook_id: "1001", to: [acme-crm]}
destinations:
  - name: acme-crm
    url: "{{a}}/acme"
`

const acmePortal = `portals:
  - {name: acme, token: acme-portal-token-0123, destinations: [acme-crm]}
`

// The relay feeds the live tail from ingest and its workers, applies
// portals on reload, records the last reload for the config view, and ends
// open tail streams when it shuts down instead of waiting for them.
func TestConsoleWiring(t *testing.T) {
	a := newSink(t)
	var logs testlog.Buffer
	r := startFile(t, portalConfig+acmePortal, a, nil, relay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	// Bounds the streams if they fail to end.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.Admin+"/api/tail", nil)
	req.Header.Set("Authorization", "Bearer acme-portal-token-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/tail as the portal: %v %v", resp, err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("stream opens with %q", line)
	}
	next := func() admin.TailItem {
		t.Helper()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("tail stream: %v", err)
			}
			if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
				var it admin.TailItem
				if err := json.Unmarshal([]byte(data), &it); err != nil {
					t.Fatal(err)
				}
				return it
			}
		}
	}
	code, ans := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"wired-1"}`))
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d", code)
	}
	ev, at := next(), next()
	if ev.Kind != admin.TailEvent || ev.EventID != ans.EventID || ev.DedupeKey != "wired-1" || ev.Outcome != "accepted" ||
		strings.Join(ev.Destinations, ",") != "acme-crm" {
		t.Errorf("first tail item %+v, want the accepted callback", ev)
	}
	if at.Kind != admin.TailAttempt || at.EventID != ans.EventID || at.Destination != "acme-crm" || at.Outcome != "success" ||
		at.Attempt != 1 || at.Status != http.StatusOK || at.DeliveryID == "" {
		t.Errorf("second tail item %+v, want acme-crm's successful attempt", at)
	}

	// A reload without the portal ends its access, open stream included;
	// the config view shows the reload.
	r.rewrite(t, portalConfig, a, nil)
	r.call(t, "POST", "/api/reload", http.StatusOK, nil)
	var ended string
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		ended += line
	}
	if !strings.Contains(ended, "event: reauth") {
		t.Errorf("the removed portal's stream ended with %q, want a reauth message", ended)
	}
	preq, _ := http.NewRequest("GET", r.Admin+"/api/tail", nil)
	preq.Header.Set("Authorization", "Bearer acme-portal-token-0123")
	presp, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusUnauthorized {
		t.Errorf("removed portal's token: %d, want 401", presp.StatusCode)
	}
	var cv admin.ConfigView
	r.call(t, "GET", "/api/config", http.StatusOK, &cv)
	if cv.LastReload == nil || !cv.LastReload.OK || strings.Contains(cv.YAML, "t0ken") || !strings.Contains(cv.YAML, "acme-crm") {
		t.Errorf("config view after reload: last %+v\n%s", cv.LastReload, cv.YAML)
	}

	// An open stream ends at shutdown, and the admin listener shuts down
	// without waiting for it.
	areq, _ := http.NewRequestWithContext(ctx, "GET", r.Admin+"/api/tail", nil)
	areq.Header.Set("Authorization", "Bearer t0ken")
	aresp, err := http.DefaultClient.Do(areq)
	if err != nil || aresp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/tail as admin: %v %v", aresp, err)
	}
	defer aresp.Body.Close()
	ard := bufio.NewReader(aresp.Body)
	if line, _ := ard.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("stream opens with %q", line)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ard.ReadString('\n'); err != nil {
			break
		}
	}
	if strings.Contains(logs.String(), "admin shutdown") {
		t.Errorf("the admin listener's shutdown waited on the tail stream:\n%s", logs.String())
	}
}
