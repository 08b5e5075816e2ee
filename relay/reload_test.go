package relay_test

import (
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/state"
)

const oneRoute = `
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "{{a}}/calls"
    retry: {initial_interval: 10ms, max_interval: 50ms}
`

// A good file takes effect at once: a new route to a new destination
// carries the next event.
func TestReloadGood(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	r := startFile(t, oneRoute, crm, archive, relay.Options{})
	if code, a := post(t, r.Ingest+"/hooks/1002", "application/json", []byte(`{"mid":"before"}`)); code != 202 || !a.Parked {
		t.Fatalf("before the reload 1002 is unrouted: %d %+v", code, a)
	}

	r.rewrite(t, `
ingest: {response_status: 200}
routes:
  - {webhook_id: "1001", to: [crm]}
  - {webhook_id: "1002", to: [archive]}
destinations:
  - name: crm
    url: "{{a}}/calls"
    headers: {X-New: "yes"}
    retry: {initial_interval: 10ms, max_interval: 50ms}
  - name: archive
    url: "{{b}}/archive"
`, crm, archive)
	var rep admin.ReloadReport
	r.call(t, "POST", "/api/reload", http.StatusOK, &rep)
	if rep.Routes != 2 || rep.Destinations != 2 || !slices.Equal(rep.Added, []string{"archive"}) ||
		!slices.Equal(rep.Changed, []string{"crm"}) || len(rep.Removed) != 0 || len(rep.RestartRequired) != 0 {
		t.Fatalf("report %+v", rep)
	}

	code, a := post(t, r.Ingest+"/hooks/1002", "application/json", []byte(`{"mid":"after"}`))
	if code != http.StatusOK || a.Status != "accepted" || a.Deliveries != 1 {
		t.Fatalf("after the reload: %d %+v, want 200 (new response_status) with 1 delivery", code, a)
	}
	if got := archive.waitFor(t, 1)[0]; string(got.body) != `{"mid":"after"}` {
		t.Errorf("archive got %q", got.body)
	}
	// Changed settings apply to the next attempt.
	post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"crm"}`))
	if got := crm.waitFor(t, 1)[0]; got.header.Get("X-New") != "yes" {
		t.Errorf("crm delivery after the reload lacks the new header: %v", got.header)
	}
	// The event parked before the reload replays under the new routes.
	var res admin.ReplayResult
	r.call(t, "POST", "/api/parked/replay", http.StatusOK, &res)
	if res.Replayed != 1 || res.Deliveries != 1 {
		t.Fatalf("parked replay %+v", res)
	}
	if got := archive.waitFor(t, 2)[1]; string(got.body) != `{"mid":"before"}` {
		t.Errorf("replayed parked event delivered %q", got.body)
	}
	if v := r.metrics(t)["relay_config_reloads_total{result=success}"]; v != 1 {
		t.Errorf("relay_config_reloads_total{success} = %v", v)
	}
}

// A bad file is refused with every problem as FILE:LINE, and the running
// config goes on as before.
func TestReloadBadKeepsOld(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	r := startFile(t, oneRoute, crm, archive, relay.Options{})
	r.rewrite(t, `
routes:
  - {webhook_id: "1001", to: [nowhere]}
destinations:
  - name: crm
    url: "{{a}}/calls"
    retyr: {max_attempts: 3}
`, crm, archive)
	var e struct {
		Error    string
		Problems []string
	}
	r.call(t, "POST", "/api/reload", http.StatusBadRequest, &e)
	// Lines count from the top of the file: 4 header lines and a blank one
	// come first.
	wantPrefixes := []string{r.cfgPath + ":7: ", r.cfgPath + ":11: "}
	if len(e.Problems) != 2 {
		t.Fatalf("problems %q, want two", e.Problems)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(e.Problems[i], p) {
			t.Errorf("problem %q, want prefix %q", e.Problems[i], p)
		}
	}
	if !strings.Contains(e.Problems[0], `"nowhere"`) || !strings.Contains(e.Problems[1], "retyr") {
		t.Errorf("problems %q do not name the unknown destination and key", e.Problems)
	}

	// The old route still works.
	if code, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"still"}`)); code != 202 || a.Deliveries != 1 {
		t.Fatalf("after a refused reload: %d %+v", code, a)
	}
	crm.waitFor(t, 1)
	m := r.metrics(t)
	if m["relay_config_last_reload_successful{}"] != 0 || m["relay_config_reloads_total{result=failure}"] != 1 {
		t.Errorf("reload metrics after a refusal: successful %v, failures %v",
			m["relay_config_last_reload_successful{}"], m["relay_config_reloads_total{result=failure}"])
	}
	// A file that is gone is refused too.
	if err := os.Remove(r.cfgPath); err != nil {
		t.Fatal(err)
	}
	r.call(t, "POST", "/api/reload", http.StatusBadRequest, &e)
	if !strings.Contains(e.Error, "running config stays") {
		t.Errorf("missing file: %q", e.Error)
	}
	post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"still2"}`))
	crm.waitFor(t, 2)
}

// Removing a destination leaves its queued deliveries queued and reported;
// they flow again when it comes back.
func TestReloadRemovedDestination(t *testing.T) {
	crm, down := flaky(t)
	archive := newSink(t)
	down.Store(true)
	body := `
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "{{a}}/calls"
    retry: {max_attempts: 100, initial_interval: 100ms, max_interval: 100ms}
  - name: archive
    url: "{{b}}/archive"
`
	r := startFile(t, body, crm, archive, relay.Options{})
	post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"stuck"}`))
	crm.waitFor(t, 1) // failed once, queued for a retry

	r.rewrite(t, `
routes:
  - {webhook_id: "1001", to: [archive]}
destinations:
  - name: archive
    url: "{{b}}/archive"
`, crm, archive)
	var rep admin.ReloadReport
	r.call(t, "POST", "/api/reload", http.StatusOK, &rep)
	if !slices.Equal(rep.Removed, []string{"crm"}) || rep.Stranded["crm"] != 1 {
		t.Fatalf("report %+v, want crm removed with 1 delivery stranded", rep)
	}
	var dests []state.Destination
	r.call(t, "GET", "/api/destinations", http.StatusOK, &dests)
	if len(dests) != 2 || dests[0].Name != "archive" || !dests[0].Configured ||
		dests[1].Name != "crm" || dests[1].Configured || dests[1].Queued != 1 {
		t.Fatalf("destinations after removal: %+v", dests)
	}
	if v := r.metrics(t)["relay_queue_depth{destination=crm}"]; v != 1 {
		t.Errorf("relay_queue_depth{crm} = %v, want 1", v)
	}
	// New events follow the new route.
	post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"new"}`))
	archive.waitFor(t, 1)
	down.Store(false)
	attempts := crm.count()
	r.rewrite(t, body, crm, archive)
	r.call(t, "POST", "/api/reload", http.StatusOK, &rep)
	got := crm.waitFor(t, attempts+1)
	if string(got[len(got)-1].body) != `{"mid":"stuck"}` {
		t.Errorf("after crm came back it got %q", got[len(got)-1].body)
	}
}

// A refused reload quotes the URL it refuses without its password or query
// values, in the /api/reload answer and in the log.
func TestReloadRefusalRedacts(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	var logs testlog.Buffer
	r := startFile(t, oneRoute, crm, archive, relay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.rewrite(t, `
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "ftp://u:Pa55@files.example/calls?token=s3cret"
`, crm, archive)
	var e struct {
		Error    string
		Problems []string
	}
	r.call(t, "POST", "/api/reload", http.StatusBadRequest, &e)
	answer := e.Error + "\n" + strings.Join(e.Problems, "\n")
	if !strings.Contains(answer, `"ftp://xxxxx:xxxxx@files.example/calls?token=xxxxx"`) {
		t.Errorf("answer %q does not quote the redacted URL", answer)
	}
	for _, secret := range []string{"Pa55", "s3cret"} {
		if strings.Contains(answer, secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("%q shown; answer:\n%s\nlog:\n%s", secret, answer, logs.String())
		}
	}
}
