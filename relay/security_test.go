package relay_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay"
)

// eachStore runs fn once on the embedded store and once on Redis, with
// the store section of the config.
func eachStore(t *testing.T, fn func(t *testing.T, storeYAML string)) {
	stores := map[string]func(t *testing.T) string{
		"embedded": func(t *testing.T) string { return "{embedded: {path: " + t.TempDir() + "}}" },
		"redis": func(t *testing.T) string {
			return fmt.Sprintf("{redis: {url: %q, prefix: \"sec:\"}}", testredis.Start(t).URL())
		},
	}
	for _, name := range []string{"embedded", "redis"} {
		t.Run(name, func(t *testing.T) { fn(t, stores[name](t)) })
	}
}

// startSecure runs a relay on storeYAML with cfgTail, {{a}} being sink a.
func startSecure(t *testing.T, storeYAML, cfgTail string, a *sink, opts relay.Options) *running {
	t.Helper()
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstore: " + storeYAML + "\n" +
		"delivery: {poll_interval: 50ms}\n" + strings.ReplaceAll(cfgTail, "{{a}}", a.URL)
	cfg, err := config.Load([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &running{Relay: relaytest.Start(t, cfg, opts)}
}

// postWith posts body with headers and returns the status and raw answer.
func postWith(t testing.TB, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	return send(t, http.MethodPost, url, body, withHeader(headers, "Content-Type", "application/json"))
}

// getWith sends a GET with headers and returns the status and raw answer.
func getWith(t testing.TB, url string, headers map[string]string) (int, string) {
	t.Helper()
	return send(t, http.MethodGet, url, nil, headers)
}

// withHeader is headers with k set to v, unless headers sets k itself.
func withHeader(headers map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range headers {
		out[hk] = hv
	}
	return out
}

func send(t testing.TB, method, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

const signedRoutes = `
ingest:
  auth:
    hmac: {header: X-Signature, secret: provider-secret, prefix: "sha256="}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - name: crm
    url: "{{a}}/calls"
`

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte("provider-secret"))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestForgedCallbackCannotTakeClaim is the dedupe takeover: a forged
// callback for the victim's mid must be refused without taking the claim,
// so the provider's real, signed callback is accepted and delivered.
func TestForgedCallbackCannotTakeClaim(t *testing.T) {
	eachStore(t, func(t *testing.T, storeYAML string) {
		crm := newSink(t)
		r := startSecure(t, storeYAML, signedRoutes, crm, relay.Options{})
		url := r.Ingest + "/hooks/1001"
		forged := []byte(`{"mid":"victim-777","status":"NOANSWER"}`)
		for _, hdr := range []map[string]string{nil, {"X-Signature": "sha256=" + strings.Repeat("0", 64)}} {
			code, body := postWith(t, url, forged, hdr)
			if code != http.StatusUnauthorized || body != `{"error":"unauthorized"}`+"\n" {
				t.Fatalf("forged callback: %d %s, want 401 {\"error\":\"unauthorized\"}", code, body)
			}
		}
		real := []byte(`{"mid":"victim-777","status":"ANSWER"}`)
		code, body := postWith(t, url, real, map[string]string{"X-Signature": sign(real)})
		if code != http.StatusAccepted || !strings.Contains(body, `"status":"accepted"`) {
			t.Fatalf("real callback after the forgeries: %d %s, want accepted", code, body)
		}
		got := crm.waitFor(t, 1)
		if string(got[0].body) != string(real) {
			t.Fatalf("delivered %s, want the real callback", got[0].body)
		}
		code, body = postWith(t, url, real, map[string]string{"X-Signature": sign(real)})
		if code != http.StatusAccepted || !strings.Contains(body, `"status":"duplicate"`) {
			t.Fatalf("provider's retry: %d %s, want duplicate", code, body)
		}
		m := r.metrics(t)
		if m["relay_ingest_requests_total{outcome=unauthorized}"] != 2 || m["relay_parked_events{}"] != 0 {
			t.Errorf("unauthorized %v, parked %v; want 2, 0", m["relay_ingest_requests_total{outcome=unauthorized}"], m["relay_parked_events{}"])
		}
	})
}

// TestLongMidAndFieldCollision checks, on both stores, that a 40 KB mid is
// accepted and its retry answered duplicate, and that multi-field dedupe
// values that join to the same text are told apart.
func TestLongMidAndFieldCollision(t *testing.T) {
	eachStore(t, func(t *testing.T, storeYAML string) {
		crm := newSink(t)
		r := startSecure(t, storeYAML, `
routes:
  - {webhook_id: "1001", to: [crm]}
  - {webhook_id: "2002", to: [crm]}
destinations:
  - {name: crm, url: "{{a}}/calls"}
`, crm, relay.Options{})
		long := []byte(`{"mid":"` + strings.Repeat("7", 40<<10) + `"}`)
		for i, want := range []string{"accepted", "duplicate"} {
			code, body := postWith(t, r.Ingest+"/hooks/1001", long, nil)
			if code != http.StatusAccepted || !strings.Contains(body, `"status":"`+want+`"`) {
				t.Fatalf("40 KB mid, post %d: %d %s, want %s", i+1, code, body, want)
			}
		}
		crm.waitFor(t, 1)
	})
	eachStore(t, func(t *testing.T, storeYAML string) {
		crm := newSink(t)
		r := startSecure(t, storeYAML, `
dedupe: {fields: [call_id, leg]}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - {name: crm, url: "{{a}}/calls"}
`, crm, relay.Options{})
		for _, body := range []string{`{"call_id":"abc:1","leg":"2"}`, `{"call_id":"abc","leg":"1:2"}`} {
			code, ans := postWith(t, r.Ingest+"/hooks/1001", []byte(body), nil)
			if code != http.StatusAccepted || !strings.Contains(ans, `"status":"accepted"`) {
				t.Fatalf("%s: %d %s, want accepted", body, code, ans)
			}
		}
		crm.waitFor(t, 2)
	})
}

// TestParkedExpire checks, on both stores, that the relay deletes parked
// events past ingest.parked_ttl and counts them.
func TestParkedExpire(t *testing.T) {
	eachStore(t, func(t *testing.T, storeYAML string) {
		crm := newSink(t)
		r := startSecure(t, storeYAML, `
ingest: {parked_ttl: 1ms}
routes:
  - {webhook_id: "1001", to: [crm]}
destinations:
  - {name: crm, url: "{{a}}/calls"}
`, crm, relay.Options{ParkedSweepInterval: 20 * time.Millisecond})
		code, body := postWith(t, r.Ingest+"/hooks/7777", []byte(`{"mid":"p-1"}`), nil)
		if code != http.StatusAccepted || !strings.Contains(body, `"parked":true`) {
			t.Fatalf("unmatched callback: %d %s, want parked", code, body)
		}
		eventually(t, "the parked event expires", func() bool {
			m := r.metrics(t)
			return m["relay_parked_expired_total{}"] == 1 && m["relay_parked_events{}"] == 0
		})
	})
}

// adminTestToken is the admin token of adminFile's configs.
const adminTestToken = "admin-token-0123456789abcdef"

// adminFile is a relay config file in dir, on loopback ports with an
// embedded store, whose admin line carries adminTestToken and then extra
// ("key: value, ..."); write replaces its extra, and start runs a relay
// from it, as relay serve does, so that Reload reads it again.
type adminFile struct {
	t         *testing.T
	dir, path string
}

func newAdminFile(t *testing.T, extra string) *adminFile {
	t.Helper()
	dir := t.TempDir()
	f := &adminFile{t: t, dir: dir, path: filepath.Join(dir, "relay.yaml")}
	f.write(extra)
	return f
}

func (f *adminFile) write(extra string) {
	f.t.Helper()
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0, token: " + adminTestToken + ", " + extra + "}\n" +
		"store: {embedded: {path: " + filepath.Join(f.dir, "data") + "}}\n"
	if err := os.WriteFile(f.path, []byte(text), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *adminFile) start() *relaytest.Relay {
	f.t.Helper()
	cfg, err := config.LoadFile(f.path)
	if err != nil {
		f.t.Fatalf("config: %v", err)
	}
	return relaytest.Start(f.t, cfg, relay.Options{})
}

// The admin API is often reached through a reverse proxy that terminates
// TLS. Failed admin authentications are counted per client as
// admin.trusted_proxies decides it, so a stranger guessing tokens through
// the proxy does not lock the operators out with it. Without the key the
// proxy is the client, as before; a reload sets it.
func TestAdminThrottlePerClientBehindProxy(t *testing.T) {
	const tok = adminTestToken
	f := newAdminFile(t, "trusted_proxies: []")
	r := f.start()
	get := func(client, token string) int {
		t.Helper()
		code, _ := getWith(t, r.Admin+"/api/destinations", map[string]string{
			"Authorization": "Bearer " + token, "X-Forwarded-For": client})
		return code
	}
	guess := func() {
		t.Helper()
		var last int
		for range config.DefaultAuthFailureBurst + 1 {
			last = get("198.51.100.7", "guess")
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("the guessing client's last answer: %d, want 429", last)
		}
	}

	guess()
	if code := get("203.0.113.20", tok); code != http.StatusTooManyRequests {
		t.Errorf("no trusted proxies: the operator behind the same proxy got %d, want 429 (the proxy is the client)", code)
	}
	f.write("trusted_proxies: [127.0.0.1/32]")
	if _, err := r.Server.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	guess()
	if code := get("203.0.113.21", tok); code != http.StatusOK {
		t.Errorf("proxy trusted: the operator behind the same proxy got %d, want 200", code)
	}
}

// admin.metrics_auth puts /metrics behind the admin token, for relays whose
// portal clients reach the admin listener for their console.
func TestMetricsAuth(t *testing.T) {
	const tok = adminTestToken
	r := newAdminFile(t, "metrics_auth: true").start()
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {tok, http.StatusOK}} {
		headers := map[string]string{}
		if tc.token != "" {
			headers["Authorization"] = "Bearer " + tc.token
		}
		if code, _ := getWith(t, r.Admin+"/metrics", headers); code != tc.want {
			t.Errorf("GET /metrics with token %q: %d, want %d", tc.token, code, tc.want)
		}
	}
}

// admin.metrics_auth and admin.pprof change routes, so a reload reports
// them as needing a restart and keeps the running values.
func TestReloadKeepsAdminRoutes(t *testing.T) {
	f := newAdminFile(t, "metrics_auth: false, pprof: false")
	r := f.start()
	f.write("metrics_auth: true, pprof: true")
	rep, err := r.Server.Reload(context.Background())
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(rep.RestartRequired, []string{"admin.pprof", "admin.metrics_auth"}) {
		t.Errorf("restart required for %v, want admin.pprof and admin.metrics_auth", rep.RestartRequired)
	}
	if code, _ := getWith(t, r.Admin+"/metrics", nil); code != http.StatusOK {
		t.Errorf("GET /metrics without a token after the reload: %d, want 200 (the running value stays)", code)
	}
}

// Agents dial in on the ingest listener, often through the same load
// balancer as the providers. Failed agent authentications are counted per
// client as ingest.trusted_proxies decides it, so a stranger guessing
// tokens through the balancer does not lock the real agents out with it.
func TestAgentThrottlePerClientBehindProxy(t *testing.T) {
	a := newSink(t)
	const tok = "office-agent-token-0123456789abcdef"
	r := startSecure(t, "{embedded: {path: "+t.TempDir()+"}}", `
ingest: {trusted_proxies: [127.0.0.1/32]}
agents: [{name: office, token: `+tok+`}]
destinations: [{name: crm, url: "{{a}}/crm", agent: office}]
`, a, relay.Options{})
	report := func(client, token string) int {
		t.Helper()
		code, _ := postWith(t, r.Ingest+"/agent/v1/report", []byte(`{"outcomes":[],"held":[]}`), map[string]string{
			"X-Relay-Agent": "office", "Authorization": "Bearer " + token, "X-Forwarded-For": client})
		return code
	}
	// Past the default burst, the stranger is refused without a look at
	// its token.
	var last int
	for range config.DefaultAuthFailureBurst + 1 {
		last = report("198.51.100.7", "guess")
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the guessing client's last answer: %d, want 429", last)
	}
	if code := report("203.0.113.20", tok); code != http.StatusOK {
		t.Errorf("the real agent behind the same proxy: %d, want 200", code)
	}
}
