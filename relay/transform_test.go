package relay_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/store"
)

// transformConfig fans webhook 1003 out to three destinations that each
// want their own shape (the three worked examples of docs/transform.md),
// plus one whose transform fails on the seed body.
const transformConfig = `
routes:
  - webhook_id: "1003"
    to: [beta-crm, gamma-forms, broken]
  - webhook_id: "1003"
    filter: '.status == "ANSWER" and (.duration|tonumber) > 10'
    to: [delta-calls]
destinations:
  - name: beta-crm
    url: "%s/beta"
    signing_secret: "whsec_%s"
    transform:
      body: '{phone: .to, outcome: .status, seconds: (.duration|tonumber)}'
      headers: {X-Call-Id: .mid}
  - name: gamma-forms
    url: "%s/gamma"
    transform:
      body: '{caller: .from, callee: .to, status, duration}'
      format: form
  - name: delta-calls
    url: "%s/delta"
    signing_secret: "whsec_%s"
    transform:
      body: '{call_id: .mid, seconds: (.duration|tonumber), recording: {link: .recording_url}}'
  - name: broken
    url: "%s/broken"
    retry: {max_attempts: 5}
    transform:
      body: '.status | tonumber'
`

// TestTransformFanOut posts the seed callback verbatim once: each of three
// destinations receives its own shape, signed over what it received; the
// destination whose transform fails is dead-lettered after one attempt with
// the jq error, and the admin API shows the original body beside what each
// destination was sent.
func TestTransformFanOut(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := base64.StdEncoding.EncodeToString(key)
	beta, gamma, delta, broken := newSink(t), newSink(t), newSink(t), newSink(t)
	r := startFile(t, fmt.Sprintf(transformConfig, beta.URL, secret, gamma.URL, delta.URL, secret, broken.URL), nil, nil, relay.Options{})

	seed := seedBody(t)
	status, ans := post(t, r.Ingest+"/hooks/1003", "application/json", seed)
	if status != 202 || ans.Deliveries != 4 {
		t.Fatalf("POST seed: %d %+v, want 202 with 4 deliveries", status, ans)
	}

	tests := []struct {
		name   string
		sink   *sink
		ct     string
		body   string
		header map[string]string
		signed bool
	}{
		{"beta-crm", beta, "application/json", `{"outcome":"ANSWER","phone":"91886713XXXX","seconds":23}`,
			map[string]string{"X-Call-Id": "1234-1333-XXXXX"}, true},
		{"gamma-forms", gamma, "application/x-www-form-urlencoded",
			"callee=91886713XXXX&caller=91891952XXXX&duration=23&status=ANSWER", nil, false},
		{"delta-calls", delta, "application/json",
			`{"call_id":"1234-1333-XXXXX","recording":{"link":"https://youraudiofilelocation/"},"seconds":23}`, nil, true},
	}
	for _, tt := range tests {
		got := tt.sink.waitFor(t, 1)[0]
		if string(got.body) != tt.body {
			t.Errorf("%s got body\n%s\nwant\n%s", tt.name, got.body, tt.body)
		}
		if ct := got.header.Get("Content-Type"); ct != tt.ct {
			t.Errorf("%s got Content-Type %q, want %q", tt.name, ct, tt.ct)
		}
		for k, v := range tt.header {
			if got.header.Get(k) != v {
				t.Errorf("%s got %s: %q, want %q", tt.name, k, got.header.Get(k), v)
			}
		}
		if got.header.Get("Idempotency-Key") != "1234-1333-XXXXX" {
			t.Errorf("%s: Idempotency-Key %q, want the mid", tt.name, got.header.Get("Idempotency-Key"))
		}
		if tt.signed {
			checkSignature(t, tt.name, key, got)
		}
	}

	var ev admin.EventView
	eventually(t, "the broken transform's delivery is dead-lettered", func() bool {
		r.call(t, "GET", "/api/events/"+ans.EventID, 200, &ev)
		for _, d := range ev.Deliveries {
			if d.Destination == "broken" {
				return d.State == store.StateDead
			}
		}
		return false
	})
	if broken.count() != 0 {
		t.Errorf("the broken destination received %d requests, want none", broken.count())
	}
	if ev.Body != string(seed) {
		t.Errorf("event body = %q, want the original bytes", ev.Body)
	}
	for _, d := range ev.Deliveries {
		switch d.Destination {
		case "broken":
			if d.Attempts != 1 || len(d.AttemptLog) != 1 || !strings.Contains(d.AttemptLog[0].Error, `jq: tonumber cannot be applied to "ANSWER"`) ||
				!strings.Contains(d.AttemptLog[0].Error, "not retried") {
				t.Errorf("broken delivery: %d attempts, log %+v; want one attempt with the jq error, not retried", d.Attempts, d.AttemptLog)
			}
			if d.Sent == nil || !strings.Contains(d.Sent.Error, "jq: tonumber") {
				t.Errorf("broken delivery's sent view = %+v, want the jq error", d.Sent)
			}
		case "beta-crm":
			if d.Sent == nil || d.Sent.Body != tests[0].body || d.Sent.ContentType != "application/json" || d.Sent.Headers["X-Call-Id"] != "1234-1333-XXXXX" {
				t.Errorf("beta-crm sent view = %+v, want its transformed body and headers", d.Sent)
			}
		}
	}

	// A call of 5 seconds does not pass delta-calls' filter.
	short := strings.Replace(string(seed), `"duration": "23"`, `"duration": "5"`, 1)
	short = strings.Replace(short, `1234-1333-XXXXX`, `1234-1333-SHORT`, 1)
	if status, ans := post(t, r.Ingest+"/hooks/1003", "application/json", []byte(short)); status != 202 || ans.Deliveries != 3 {
		t.Fatalf("POST short call: %d %+v, want 202 with 3 deliveries (the filter leaves delta-calls out)", status, ans)
	}
}

// checkSignature verifies the Standard Webhooks signature by hand over the
// body the destination received.
func checkSignature(t *testing.T, name string, key []byte, got received) {
	t.Helper()
	id, ts := got.header.Get("webhook-id"), got.header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(got.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if sig := got.header.Get("webhook-signature"); sig != want || id == "" {
		t.Errorf("%s: webhook-signature %q does not verify over the received body (want %q)", name, sig, want)
	}
}

// TestReloadChangesPendingTransform: transforms run at delivery time, so a
// delivery still retrying when the config is reloaded is sent in the new
// shape. The receiver accepts only the new shape, so the delivery can only
// succeed through the reload.
func TestReloadChangesPendingTransform(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if !strings.Contains(string(b), `"v":2`) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(rcv.Close)
	cfg := func(v int) string {
		return fmt.Sprintf(`
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "%s/calls"
    retry: {initial_interval: 20ms, max_interval: 100ms, max_attempts: 1000}
    circuit: {disabled: true}
    transform: {body: '{v: %d, call: .mid}'}
`, rcv.URL, v)
	}
	r := startFile(t, cfg(1), nil, nil, relay.Options{})
	_, ans := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"m-1",}`))
	eventually(t, "an attempt in the old shape", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) > 0
	})
	mu.Lock()
	first := bodies[0]
	mu.Unlock()
	if first != `{"call":"m-1","v":1}` {
		t.Fatalf("first attempt sent %s", first)
	}
	r.rewrite(t, cfg(2), nil, nil)
	r.call(t, "POST", "/api/reload", http.StatusOK, nil)
	var ev admin.EventView
	eventually(t, "the pending delivery is delivered in the new shape", func() bool {
		r.call(t, "GET", "/api/events/"+ans.EventID, 200, &ev)
		return ev.Deliveries[0].State == store.StateDelivered
	})
	if s := ev.Deliveries[0].Sent; s == nil || s.Body != `{"call":"m-1","v":2}` {
		t.Errorf("sent view %+v, want the new shape", s)
	}
	if ev.Body != `{"mid":"m-1",}` {
		t.Errorf("stored body %q changed", ev.Body)
	}
}
