package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/internal/whsig"
	"github.com/relaygw/relay/relay/ingest"
)

// FuzzAuthHeaders feeds arbitrary Authorization, signature and
// X-Forwarded-For values to the parsers and checks, for every input:
//   - nothing panics;
//   - a token passes only when Authorization carries exactly the token
//     under the Bearer scheme (any case), and BearerToken agrees with that;
//   - an HMAC header passes only when it is the hex HMAC of the body;
//   - a Standard Webhooks signature header passes only when one of its
//     fields is the right v1 signature;
//   - the client IP is the direct peer, an address written in
//     X-Forwarded-For, or invalid, and never a trusted proxy's unless
//     every hop is one.
func FuzzAuthHeaders(f *testing.F) {
	const token = "fuzz-token-0123456789"
	const secret = "fuzz-secret"
	body := []byte(`{"mid":"m-1"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	goodSig := hex.EncodeToString(mac.Sum(nil))
	whKey := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1700000000, 0)
	whm := hmac.New(sha256.New, whKey)
	whm.Write(whsig.AppendSignedPrefix(nil, "msg_1", now.Unix()))
	whm.Write(body)
	goodWH := "v1," + encodeB64(whm.Sum(nil))

	for _, s := range [][3]string{
		{"Bearer " + token, "sha256=" + goodSig, "203.0.113.9"},
		{"bearer " + token, goodSig, "203.0.113.9, 10.0.0.2"},
		{"BEARER  " + token + " ", "sha256=" + strings.ToUpper(goodSig), " , ,"},
		{"Bearer", "sha256=", "10.0.0.1, 10.0.0.2"},
		{"Basic dXNlcjpwYXNz", "sha256=zz", "not-an-ip"},
		{"Bearer " + token + "x", goodWH, "::ffff:203.0.113.9"},
		{"", "v1,AAAA " + goodWH, "2001:db8::1,fe80::1%eth0"},
		{"\x00Bearer\t" + token, "v1a,x v2,y", strings.Repeat("1.2.3.4,", 50)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	tokenV := mustVerifier(f, &config.Auth{Token: token})
	hmacV := mustVerifier(f, &config.Auth{HMAC: &config.HMACAuth{Header: "X-Sig", Secret: secret, Algorithm: "sha256", Encoding: "hex", Prefix: "sha256="}})
	whV := mustVerifier(f, &config.Auth{StandardWebhooks: &config.StandardWebhooks{
		Secret: "whsec_" + encodeB64(whKey), Tolerance: config.Duration(time.Minute)}})
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	peer := "10.0.0.1:5000"

	f.Fuzz(func(t *testing.T, authz, sig, xff string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/1", nil)
		req.Header["Authorization"] = []string{authz}
		req.Header["X-Sig"] = []string{sig}
		req.Header["Webhook-Id"] = []string{"msg_1"}
		req.Header["Webhook-Timestamp"] = []string{"1700000000"}
		req.Header["Webhook-Signature"] = []string{sig}
		client := netip.MustParseAddr("203.0.113.1")

		cred, isBearer := authguard.BearerToken(authz)
		if isBearer && !strings.Contains(authz, cred) {
			t.Fatalf("BearerToken(%q) = %q, not in the header", authz, cred)
		}
		passed := tokenV.Check(req, client, body, now) == 0
		if passed != (isBearer && cred == token) {
			t.Fatalf("token check of Authorization %q: passed %v, bearer %v %q", authz, passed, isBearer, cred)
		}
		passed = hmacV.Check(req, client, body, now) == 0
		if want := strings.EqualFold(strings.TrimPrefix(strings.TrimSpace(sig), "sha256="), goodSig) && strings.HasPrefix(strings.TrimSpace(sig), "sha256="); passed != want {
			t.Fatalf("hmac check of %q: passed %v, want %v", sig, passed, want)
		}
		passed = whV.Check(req, client, body, now) == 0
		if want := strings.Contains(" "+sig+" ", " "+goodWH+" ") || hasField(sig, goodWH); passed != want {
			t.Fatalf("standard webhooks check of %q: passed %v, want %v", sig, passed, want)
		}

		got := ingest.ClientIP(peer, []string{xff}, trusted)
		if !got.IsValid() {
			return
		}
		if got.String() == "10.0.0.1" {
			return // the peer: XFF empty or all trusted
		}
		if !strings.Contains(xff, got.String()) && !strings.Contains(strings.ToLower(xff), got.String()) {
			// netip normalises (IPv4-mapped, zero-padding): the hop must
			// still parse to the same address.
			found := false
			for _, hop := range strings.Split(xff, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap() == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("ClientIP(%q) = %s, not written in X-Forwarded-For", xff, got)
			}
		}
		if trusted[0].Contains(got) {
			for _, hop := range strings.Split(xff, ",") {
				if hop = strings.TrimSpace(hop); hop == "" {
					continue
				}
				if a, err := netip.ParseAddr(hop); err != nil || !trusted[0].Contains(a.Unmap()) {
					t.Fatalf("ClientIP(%q) = trusted proxy %s, though hop %q is not one", xff, got, hop)
				}
			}
		}
	})
}

// hasField reports whether the space-separated list s holds field.
func hasField(s, field string) bool {
	for _, f := range strings.Fields(s) {
		if f == field {
			return true
		}
	}
	return false
}

func encodeB64(b []byte) string {
	return base64.StdEncoding.EncodeToString(b)
}

func mustVerifier(tb testing.TB, a *config.Auth) *ingest.Verifier {
	tb.Helper()
	v, err := ingest.NewVerifier(a)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
