package ingest_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
)

// recorder is an Acceptor that remembers every Accept: what reached the
// store is what the tests judge.
type recorder struct {
	mu     sync.Mutex
	events []store.Event
	claims []store.Dedupe
}

func (r *recorder) accept(ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	r.claims = append(r.claims, dd)
	return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// securedHandler builds a handler for webhook_id 1001 whose callbacks must
// pass auth, with edit applied to the config before it is compiled.
func securedHandler(t *testing.T, auth *config.Auth, edit func(*config.Config)) (*ingest.Handler, *recorder) {
	t.Helper()
	cfg := &config.Config{
		Ingest: config.Ingest{Auth: auth},
		Routes: []config.Route{{WebhookID: "1001", To: []string{"a"}}},
	}
	if edit != nil {
		edit(cfg)
	}
	cfg.SetDefaults()
	sec, err := ingest.CompileSecurity(cfg)
	if err != nil {
		t.Fatalf("CompileSecurity: %v", err)
	}
	rec := &recorder{}
	h := ingest.NewHandler(acceptFunc(rec.accept), ingest.Settings{
		Router:           route.New(cfg.Routes),
		MaxBodyBytes:     cfg.Ingest.MaxBodyBytes,
		ResponseStatus:   http.StatusAccepted,
		DedupeFields:     []string{"mid"},
		DedupeTTL:        time.Hour,
		Auth:             sec.Auth,
		RouteAuth:        sec.RouteAuth,
		TrustedProxies:   sec.TrustedProxies,
		RateLimit:        cfg.Ingest.RateLimit,
		MaxConcurrent:    cfg.Ingest.MaxConcurrent,
		MaxInflightBytes: cfg.Ingest.MaxInflightBytes,
	}, nil)
	return h, rec
}

// post sends body to target through h with the given headers.
func post(h http.Handler, target, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// wantRefused checks a refusal: the status, the bare body, and that
// nothing reached the store.
func wantRefused(t *testing.T, what string, got *httptest.ResponseRecorder, status int, rec *recorder, before int) {
	t.Helper()
	if got.Code != status {
		t.Errorf("%s: status %d, want %d (%s)", what, got.Code, status, got.Body)
	}
	if got.Body.String() != `{"error":"unauthorized"}`+"\n" {
		t.Errorf("%s: body %q, want only the error", what, got.Body)
	}
	if n := rec.count(); n != before {
		t.Errorf("%s: %d Accept calls, want none", what, n-before)
	}
}

func TestTokenCarriers(t *testing.T) {
	const token = "s3cret-token-value"
	h, rec := securedHandler(t, &config.Auth{Token: token}, nil)
	tests := []struct {
		name    string
		target  string
		headers map[string]string
		ok      bool
	}{
		{"query", "/hooks/1001?token=" + token, nil, true},
		{"X-Relay-Token", "/hooks/1001", map[string]string{"X-Relay-Token": token}, true},
		{"Bearer", "/hooks/1001", map[string]string{"Authorization": "Bearer " + token}, true},
		{"lowercase bearer", "/hooks/1001", map[string]string{"Authorization": "bearer " + token}, true},
		{"upper-case BEARER", "/hooks/1001", map[string]string{"Authorization": "BEARER " + token}, true},
		{"wrong token", "/hooks/1001?token=nope", nil, false},
		{"prefix of the token", "/hooks/1001", map[string]string{"X-Relay-Token": token[:5]}, false},
		{"token plus more", "/hooks/1001", map[string]string{"Authorization": "Bearer " + token + "x"}, false},
		{"other scheme", "/hooks/1001", map[string]string{"Authorization": "Basic " + token}, false},
		{"none", "/hooks/1001", nil, false},
	}
	for _, tc := range tests {
		before := rec.count()
		got := post(h, tc.target, `{"mid":"m-1"}`, tc.headers)
		if !tc.ok {
			wantRefused(t, tc.name, got, http.StatusUnauthorized, rec, before)
			continue
		}
		if got.Code != http.StatusAccepted || rec.count() != before+1 {
			t.Errorf("%s: status %d (%s), want accepted", tc.name, got.Code, got.Body)
		}
	}
}

// TestTokenStrippedFromURL checks that ?token= is gone from the request
// once auth has read it, so nothing later logs it. "Later" is whatever the
// router runs ingest's handler inside (the relay's door, a logging wrapper):
// the router hands the handlers a copy of the request that shares its URL.
func TestTokenStrippedFromURL(t *testing.T) {
	h, _ := securedHandler(t, &config.Auth{Token: "s3cret-token-value"}, nil)
	var seen *http.Request
	r := mux.NewRouter()
	h.Mount(r, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			seen = req
			next.ServeHTTP(w, req)
		})
	})
	req := httptest.NewRequest(http.MethodPost, "/hooks/1001?a=1&token=s3cret-token-value", strings.NewReader(`{"mid":"x"}`))
	r.ServeHTTP(httptest.NewRecorder(), req)
	if seen == nil {
		t.Fatal("the hook handler never ran")
	}
	for _, got := range []*http.Request{seen, req} {
		if strings.Contains(got.URL.String(), "s3cret") || got.URL.Query().Get("a") != "1" {
			t.Errorf("URL after ingest %q", got.URL)
		}
	}
	if strings.Contains(seen.RequestURI, "s3cret") {
		t.Errorf("RequestURI after ingest %q", seen.RequestURI)
	}
}

// hmacByDefinition computes HMAC as RFC 2104 defines it,
// H((K' xor opad) || H((K' xor ipad) || m)), from the bare hash, so the
// vectors do not come from the crypto/hmac under test.
func hmacByDefinition(newH func() hash.Hash, key, msg []byte) []byte {
	block := newH().BlockSize()
	if len(key) > block {
		h := newH()
		h.Write(key)
		key = h.Sum(nil)
	}
	k := make([]byte, block)
	copy(k, key)
	ipad, opad := make([]byte, block), make([]byte, block)
	for i := range k {
		ipad[i], opad[i] = k[i]^0x36, k[i]^0x5c
	}
	inner := newH()
	inner.Write(ipad)
	inner.Write(msg)
	outer := newH()
	outer.Write(opad)
	outer.Write(inner.Sum(nil))
	return outer.Sum(nil)
}

func TestHMACVectors(t *testing.T) {
	algorithms := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}
	encodings := map[string]func([]byte) string{"hex": hex.EncodeToString, "base64": base64.StdEncoding.EncodeToString}
	body := `{"mid":"m-1","status":"ANSWER",}`
	// Longer than any block size, so the key-hashing step is covered too.
	longKey := strings.Repeat("k", 200)
	for alg, newH := range algorithms {
		for enc, encode := range encodings {
			for _, prefix := range []string{"", alg + "="} {
				for _, secret := range []string{"provider-secret", longKey} {
					auth := &config.Auth{HMAC: &config.HMACAuth{
						Header: "X-Signature", Secret: "old-secret " + secret, Algorithm: alg, Encoding: enc, Prefix: prefix,
					}}
					h, rec := securedHandler(t, auth, nil)
					name := alg + "/" + enc + "/prefix=" + prefix
					sig := prefix + encode(hmacByDefinition(newH, []byte(secret), []byte(body)))
					if got := post(h, "/hooks/1001", body, map[string]string{"X-Signature": sig}); got.Code != http.StatusAccepted {
						t.Errorf("%s: valid signature: status %d", name, got.Code)
					}
					old := prefix + encode(hmacByDefinition(newH, []byte("old-secret"), []byte(body)))
					if got := post(h, "/hooks/1001", body, map[string]string{"X-Signature": old}); got.Code != http.StatusAccepted {
						t.Errorf("%s: signature by the rotated-out secret: status %d", name, got.Code)
					}
					bad := []struct{ what, sig, body string }{
						{"other body", sig, body + " "},
						{"other key", prefix + encode(hmacByDefinition(newH, []byte("guess"), []byte(body))), body},
						{"no header", "", body},
						{"truncated", sig[:len(sig)-4], body},
					}
					if prefix != "" {
						bad = append(bad, struct{ what, sig, body string }{"prefix missing", strings.TrimPrefix(sig, prefix), body})
					}
					for _, b := range bad {
						before := rec.count()
						hdr := map[string]string{}
						if b.sig != "" {
							hdr["X-Signature"] = b.sig
						}
						wantRefused(t, name+": "+b.what, post(h, "/hooks/1001", b.body, hdr), http.StatusUnauthorized, rec, before)
					}
				}
			}
		}
	}
}

// TestStandardWebhooksVector checks the spec repository's published vector
// through the handler, and an expired timestamp.
func TestStandardWebhooksVector(t *testing.T) {
	auth := &config.Auth{StandardWebhooks: &config.StandardWebhooks{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	headers := map[string]string{
		"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	}
	const body = `{"test": 2432232314}`
	sent := time.Unix(1614265330, 0)
	tests := []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"at the timestamp", sent, true},
		{"4m later", sent.Add(4 * time.Minute), true},
		{"expired", sent.Add(6 * time.Minute), false},
		{"from the future", sent.Add(-6 * time.Minute), false},
	}
	for _, tc := range tests {
		h, rec := securedHandler(t, auth, nil)
		h.Now = func() time.Time { return tc.now }
		got := post(h, "/hooks/1001", body, headers)
		if tc.ok {
			if got.Code != http.StatusAccepted || rec.count() != 1 {
				t.Errorf("%s: status %d (%s)", tc.name, got.Code, got.Body)
			}
			continue
		}
		wantRefused(t, tc.name, got, http.StatusUnauthorized, rec, 0)
	}
}

func TestAllowIPs(t *testing.T) {
	auth := &config.Auth{AllowIPs: []string{"203.0.113.0/24", "2001:db8::/32"}}
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     string
		ok      bool
	}{
		{"allowed peer", nil, "203.0.113.5:4000", "", true},
		{"allowed IPv6 peer", nil, "[2001:db8::7]:4000", "", true},
		{"other peer", nil, "198.51.100.1:4000", "", false},
		{"XFF from an untrusted peer is ignored", nil, "198.51.100.1:4000", "203.0.113.9", false},
		{"allowed peer, XFF ignored", nil, "203.0.113.5:4000", "198.51.100.1", true},
		{"trusted proxy, allowed client", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "203.0.113.9", true},
		{"trusted proxy, other client", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "198.51.100.7", false},
		{"two trusted hops", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "203.0.113.9, 10.2.2.2", true},
		{"spoofed leftmost entry", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "203.0.113.9, 198.51.100.7", false},
		{"garbage entry", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "203.0.113.9, not-an-ip", false},
		{"proxy itself, no XFF", []string{"10.0.0.0/8"}, "10.1.1.1:4000", "", false},
		{"untrusted peer in trusted-proxy setup", []string{"10.0.0.0/8"}, "198.51.100.1:4000", "203.0.113.9", false},
	}
	for _, tc := range tests {
		h, rec := securedHandler(t, auth, func(c *config.Config) { c.Ingest.TrustedProxies = tc.trusted })
		req := httptest.NewRequest(http.MethodPost, "/hooks/1001", strings.NewReader(`{"mid":"m"}`))
		req.RemoteAddr = tc.peer
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		got := httptest.NewRecorder()
		h.ServeHTTP(got, req)
		if !tc.ok {
			wantRefused(t, tc.name, got, http.StatusForbidden, rec, 0)
			continue
		}
		if got.Code != http.StatusAccepted {
			t.Errorf("%s: status %d (%s)", tc.name, got.Code, got.Body)
		}
	}
}

// TestEveryCheckMustPass checks that with several checks configured each
// one is required, and that a route's auth replaces ingest.auth for its
// webhook_id only.
func TestEveryCheckMustPass(t *testing.T) {
	auth := &config.Auth{Token: "ingest-token-123", AllowIPs: []string{"192.0.2.0/24"}}
	h, rec := securedHandler(t, auth, func(c *config.Config) {
		c.Routes = append(c.Routes, config.Route{WebhookID: "2002", To: []string{"a"}, Auth: &config.Auth{Token: "route-token-456"}})
	})
	tests := []struct {
		name, target, peer, token string
		status                    int
	}{
		{"token and IP", "/hooks/1001", "192.0.2.1:1", "ingest-token-123", 202},
		{"token, wrong IP", "/hooks/1001", "198.51.100.1:1", "ingest-token-123", 403},
		{"IP, wrong token", "/hooks/1001", "192.0.2.1:1", "route-token-456", 401},
		{"route auth replaces", "/hooks/2002", "198.51.100.1:1", "route-token-456", 202},
		{"route refuses ingest token", "/hooks/2002", "192.0.2.1:1", "ingest-token-123", 401},
		{"unrouted id gets ingest auth", "/hooks/9999", "198.51.100.1:1", "route-token-456", 403},
		{"webhook_id from the body", "/hooks", "198.51.100.1:1", "route-token-456", 202},
	}
	for _, tc := range tests {
		before := rec.count()
		req := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader(`{"mid":"m","webhook_id":"2002"}`))
		req.RemoteAddr = tc.peer
		req.Header.Set("X-Relay-Token", tc.token)
		got := httptest.NewRecorder()
		h.ServeHTTP(got, req)
		if tc.status != 202 {
			wantRefused(t, tc.name, got, tc.status, rec, before)
			continue
		}
		if got.Code != 202 {
			t.Errorf("%s: status %d (%s)", tc.name, got.Code, got.Body)
		}
	}
}

// TestUnauthorizedOutcome checks refusals are counted as "unauthorized" and
// that a bad body from an unauthenticated sender learns nothing more.
func TestUnauthorizedOutcome(t *testing.T) {
	h, rec := securedHandler(t, &config.Auth{Token: "s3cret-token-value"}, func(c *config.Config) {
		c.Routes[0].Match = map[string]string{"status": "ANSWER"}
	})
	var outcomes []string
	h.OnOutcome = func(o string, _ time.Duration) { outcomes = append(outcomes, o) }
	wantRefused(t, "unreadable body", post(h, "/hooks/1001", `{"mid":`, nil), http.StatusUnauthorized, rec, 0)
	wantRefused(t, "no webhook_id", post(h, "/hooks", `{}`, nil), http.StatusUnauthorized, rec, 0)
	if strings.Join(outcomes, ",") != "unauthorized,unauthorized" {
		t.Errorf("outcomes %v", outcomes)
	}
}
