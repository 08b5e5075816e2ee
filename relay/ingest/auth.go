package ingest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/internal/whsig"
)

// Header names and the query parameter that carry an ingest token.
const (
	HeaderToken = "X-Relay-Token"
	QueryToken  = "token"
)

// Verifier checks that a callback came from the provider: one auth block
// of the config, compiled. Every check it holds must pass. A nil *Verifier
// checks nothing.
type Verifier struct {
	token     []byte
	hmac      *hmacCheck
	whKeys    [][]byte
	tolerance time.Duration
	allow     []netip.Prefix
}

// hmacCheck is a provider signature over the raw body.
type hmacCheck struct {
	header string
	keys   [][]byte
	newH   func() hash.Hash
	base64 bool
	prefix string
}

// NewVerifier compiles an auth block; nil gives nil. The error never holds
// a secret (config validation has refused what it reports already).
func NewVerifier(a *config.Auth) (*Verifier, error) {
	if a == nil {
		return nil, nil
	}
	v := &Verifier{}
	if a.Token != "" {
		v.token = []byte(a.Token)
	}
	if h := a.HMAC; h != nil {
		c := &hmacCheck{header: h.Header, prefix: h.Prefix, base64: h.Encoding == "base64"}
		switch h.Algorithm {
		case "sha1":
			c.newH = sha1.New
		case "sha256", "":
			c.newH = sha256.New
		case "sha512":
			c.newH = sha512.New
		default:
			return nil, fmt.Errorf("ingest: auth.hmac: unknown algorithm %q", h.Algorithm)
		}
		for _, s := range strings.Fields(h.Secret) {
			c.keys = append(c.keys, []byte(s))
		}
		if len(c.keys) == 0 || c.header == "" {
			return nil, fmt.Errorf("ingest: auth.hmac needs a header and a secret")
		}
		v.hmac = c
	}
	if sw := a.StandardWebhooks; sw != nil {
		keys, err := whsig.ParseKeys(sw.Secret)
		if err != nil {
			return nil, fmt.Errorf("ingest: auth.standard_webhooks: %w", err)
		}
		v.whKeys, v.tolerance = keys, sw.Tolerance.D()
		if v.tolerance <= 0 {
			v.tolerance = config.DefaultWebhookTolerance
		}
	}
	allow, err := config.ParseCIDRs(a.AllowIPs)
	if err != nil {
		return nil, fmt.Errorf("ingest: auth.allow_ips: %w", err)
	}
	v.allow = allow
	return v, nil
}

// Refusals Check reports; zero means every check passed.
const (
	refuseNone   = 0
	refuseAuth   = http.StatusUnauthorized
	refuseSource = http.StatusForbidden
)

// Check reports whether r, from client, with body, passes every check:
// 0 when it does, 403 when allow_ips refuses the client, 401 otherwise.
// Every configured check runs, so the time taken does not say which failed.
func (v *Verifier) Check(r *http.Request, client netip.Addr, body []byte, now time.Time) int {
	if v == nil {
		return refuseNone
	}
	if len(v.allow) > 0 && !contains(v.allow, client) {
		return refuseSource
	}
	ok := true
	if v.token != nil && !v.tokenOK(r) {
		ok = false
	}
	if v.hmac != nil && !v.hmac.ok(r.Header.Get(v.hmac.header), body) {
		ok = false
	}
	if v.whKeys != nil {
		h := r.Header
		if whsig.Verify(v.whKeys, h.Get(whsig.HeaderID), h.Get(whsig.HeaderTimestamp), h.Get(whsig.HeaderSignature), body, now, v.tolerance) != nil {
			ok = false
		}
	}
	if !ok {
		return refuseAuth
	}
	return refuseNone
}

// tokenOK reports whether any of the three carriers holds the token.
func (v *Verifier) tokenOK(r *http.Request) bool {
	match := 0
	for _, got := range tokenCandidates(r) {
		match |= subtle.ConstantTimeCompare([]byte(got), v.token)
	}
	return match == 1
}

// tokenCandidates returns what each carrier holds, empty where absent:
// ?token=, X-Relay-Token, and the credentials of Authorization: Bearer.
func tokenCandidates(r *http.Request) [3]string {
	var c [3]string
	if strings.Contains(r.URL.RawQuery, QueryToken) {
		c[0] = r.URL.Query().Get(QueryToken)
	}
	c[1] = r.Header.Get(HeaderToken)
	c[2], _ = authguard.BearerToken(r.Header.Get("Authorization"))
	return c
}

// ok reports whether the header holds the HMAC of body under one of the
// keys. All keys are tried, whatever matched.
func (c *hmacCheck) ok(header string, body []byte) bool {
	sig, found := strings.CutPrefix(strings.TrimSpace(header), c.prefix)
	if !found || sig == "" {
		return false
	}
	got, err := c.decode(sig)
	if err != nil {
		return false
	}
	match := false
	for _, key := range c.keys {
		m := hmac.New(c.newH, key)
		m.Write(body)
		if hmac.Equal(got, m.Sum(nil)) {
			match = true
		}
	}
	return match
}

// decode reads a signature in the configured encoding; base64 is taken
// padded or not, standard or URL alphabet, as providers differ.
func (c *hmacCheck) decode(sig string) ([]byte, error) {
	if !c.base64 {
		return hex.DecodeString(sig)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(sig); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("ingest: signature is not base64")
}

// stripToken removes ?token= from r's URL, so nothing that logs or keeps
// the URL later sees the secret.
func stripToken(r *http.Request) {
	if !strings.Contains(r.URL.RawQuery, QueryToken) {
		return
	}
	q := r.URL.Query()
	if !q.Has(QueryToken) {
		return
	}
	q.Del(QueryToken)
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP decides which address a request comes from. The direct peer is
// the answer unless it is one of trusted; then X-Forwarded-For is walked
// from the right, past trusted proxies, and the first address that is not
// one is the client. An entry that is not an address ends the walk with an
// invalid Addr, which no allow_ips admits: whoever wrote it is not a proxy
// the operator trusts to write that header.
func ClientIP(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(remoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = peer.Addr().Unmap()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		addr = a.Unmap()
	}
	if !contains(trusted, addr) {
		return addr
	}
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(hops[j])
			if hop == "" {
				continue
			}
			a, err := netip.ParseAddr(hop)
			if err != nil {
				return netip.Addr{}
			}
			addr = a.Unmap()
			if !contains(trusted, addr) {
				return addr
			}
		}
	}
	return addr // every hop is a trusted proxy: the leftmost is the client
}
