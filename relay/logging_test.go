package relay_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/store"
)

// By default a callback's acceptance and each delivery's final outcome get
// one info line with ids, destination, status and duration, and never a
// body, a header value or a secret; log.sample 0 silences the accepted and
// delivered lines but not the failures.
func TestOneLinePerCallbackAndOutcome(t *testing.T) {
	tests := []struct {
		name        string
		sample      string
		wantRoutine bool // accepted and delivered lines
	}{
		{"default", "", true},
		{"sample 1", "log: {sample: 1}\n", true},
		{"sample 0", "log: {sample: 0}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := newSinkFunc(t, func() int { return http.StatusOK })
			gone := newSinkFunc(t, func() int { return http.StatusGone })
			cfg, err := config.Load([]byte("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"+
				"store: {embedded: {path: '"+t.TempDir()+"'}}\ndelivery: {poll_interval: 50ms}\n"+tt.sample+`
routes: [{webhook_id: "1001", to: [ok, gone]}]
destinations:
  - {name: ok, url: "`+ok.URL+`", headers: {X-Api-Key: hdr-secret-value}, signing_secret: sign-secret-value}
  - {name: gone, url: "`+gone.URL+`", retry: {max_attempts: 1}}
`), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			r := relaytest.Start(t, cfg, relay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			status, ans := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"m-log-1","secret":"body-secret-value"}`))
			if status != http.StatusAccepted {
				t.Fatalf("post: %d", status)
			}
			<-ok.seen
			<-gone.seen
			if err := r.Stop(); err != nil { // every outcome is logged once Run returns
				t.Fatal(err)
			}
			out := logs.String()
			lines := map[string]string{}
			for _, l := range strings.Split(out, "\n") {
				for _, msg := range []string{"ingest: accepted", "deliver: delivered", "deliver: dead-lettered"} {
					if strings.Contains(l, `msg="`+msg+`"`) {
						lines[msg] += l
					}
				}
			}
			want := map[string][]string{
				"ingest: accepted":       {"event_id=" + ans.EventID, "webhook_id=1001", "mid=m-log-1", "deliveries=2", "took="},
				"deliver: delivered":     {"destination=ok", "event_id=" + ans.EventID, "delivery=dlv_", "attempt=1", "status=200", "took="},
				"deliver: dead-lettered": {"destination=gone", "event_id=" + ans.EventID, "status=410", "success_status"},
			}
			for msg, fields := range want {
				routine := msg != "deliver: dead-lettered"
				if routine && !tt.wantRoutine {
					if lines[msg] != "" {
						t.Errorf("log.sample 0 still logged %q: %s", msg, lines[msg])
					}
					continue
				}
				if lines[msg] == "" {
					t.Errorf("no %q line in the log:\n%s", msg, out)
					continue
				}
				for _, f := range fields {
					if !strings.Contains(lines[msg], f) {
						t.Errorf("%q line lacks %q: %s", msg, f, lines[msg])
					}
				}
			}
			for _, secret := range []string{"body-secret-value", "hdr-secret-value", "sign-secret-value"} {
				if strings.Contains(out, secret) {
					t.Errorf("the log holds %q:\n%s", secret, out)
				}
			}
		})
	}
}

// TestLogsLeaveOutWhatJQQuotes: a jq error quotes the value it failed on,
// and the value comes from the body. The warning for a filter that failed
// and the dead-letter line of a transform that failed name the error
// without it; the attempt record, read beside the body through the admin
// API, keeps the whole text.
func TestLogsLeaveOutWhatJQQuotes(t *testing.T) {
	var logs testlog.Buffer
	r := startFile(t, `
routes:
  - {webhook_id: "1001", filter: '.phone.x == 1', to: [a]}
  - {webhook_id: "1001", to: [broken]}
destinations:
  - {name: a, url: "{{a}}"}
  - {name: broken, url: "{{a}}", transform: {body: '.phone | tonumber'}}
`, newSink(t), nil, relay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const phone = "91891952SECRET"
	status, ans := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"m-jq-1","phone":"`+phone+`"}`))
	if status != http.StatusAccepted || ans.Deliveries != 1 {
		t.Fatalf("post: %d %+v, want 202 with one delivery (the filter fails)", status, ans)
	}
	var ev admin.EventView
	eventually(t, "the broken transform's delivery is dead-lettered", func() bool {
		r.call(t, "GET", "/api/events/"+ans.EventID, 200, &ev)
		return len(ev.Deliveries) == 1 && ev.Deliveries[0].State == store.StateDead
	})
	if log := ev.Deliveries[0].AttemptLog; len(log) != 1 || !strings.Contains(log[0].Error, phone) {
		t.Errorf("attempt log %+v, want the jq error with the value it quoted", log)
	}
	if err := r.Stop(); err != nil { // every outcome is logged once Run returns
		t.Fatal(err)
	}
	out := logs.String()
	for msg, want := range map[string]string{
		"route: filter failed":   `err="transform: filter: jq: expected an object but got: string …"`,
		"deliver: dead-lettered": `error="transform: body: jq: tonumber cannot be applied to …; not retried`,
	} {
		if !strings.Contains(out, `msg="`+msg) || !strings.Contains(out, want) {
			t.Errorf("no %q line with %s in the log:\n%s", msg, want, out)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("the log quotes the body:\n%s", out)
	}
}
