package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"

	"github.com/relaygw/relay/internal/whsig"
)

// HMAC algorithms and encodings that auth.hmac accepts.
var (
	hmacAlgorithms = []string{"sha256", "sha1", "sha512"}
	hmacEncodings  = []string{"hex", "base64"}
)

// ParseCIDR reads an allow_ips or trusted_proxies entry: a CIDR, or a
// single address meaning just that address.
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (203.0.113.0/24) or an IP address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseCIDRs is ParseCIDR of each of list, in order; nil for none.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ingestLimits checks the keys that bound what callbacks can cost.
func (v *validator) ingestLimits() {
	in := v.c.Ingest
	if in.ParkedTTL <= 0 {
		v.add(v.pos.line("ingest.parked_ttl"), "ingest.parked_ttl must be positive, got %s", in.ParkedTTL)
	}
	if in.MaxConcurrent <= 0 {
		v.add(v.pos.line("ingest.max_concurrent"), "ingest.max_concurrent must be positive, got %d", in.MaxConcurrent)
	}
	if in.MaxInflightBytes < in.MaxBodyBytes {
		v.add(v.pos.line("ingest.max_inflight_bytes", "ingest.max_body_bytes"),
			"ingest.max_inflight_bytes (%d) must be at least ingest.max_body_bytes (%d)", in.MaxInflightBytes, in.MaxBodyBytes)
	}
	if math.IsNaN(in.RateLimit) || math.IsInf(in.RateLimit, 0) || in.RateLimit < 0 {
		v.add(v.pos.line("ingest.rate_limit"), "ingest.rate_limit must be a finite number, 0 or more (0 = no limit)")
	}
	v.cidrs("ingest.trusted_proxies", in.TrustedProxies)
	v.auth("ingest.auth", in.Auth, v.pos.line("ingest.auth", "ingest"))
}

// routeAuth checks each route's auth, and that routes sharing a webhook_id
// agree on it: auth is decided per webhook_id, before any body field could
// pick one route over another.
func (v *validator) routeAuth() {
	first := map[string]int{} // webhook_id -> index of its first route
	for i, r := range v.c.Routes {
		p := fmt.Sprintf("routes.%d", i)
		line := v.pos.line(p+".auth", p)
		if line == 0 {
			line = r.Line
		}
		v.auth(p+".auth", r.Auth, line)
		j, seen := first[r.WebhookID]
		if !seen {
			first[r.WebhookID] = i
			continue
		}
		if !reflect.DeepEqual(r.Auth, v.c.Routes[j].Auth) {
			other := v.pos.line(fmt.Sprintf("routes.%d", j))
			if other == 0 {
				other = v.c.Routes[j].Line
			}
			v.add(line, "route %d: auth differs from route %d's (line %d) for webhook_id %q; routes sharing a webhook_id must agree on auth",
				i+1, j+1, other, r.WebhookID)
		}
	}
}

// auth checks one auth block at path. Secrets are never quoted.
func (v *validator) auth(path string, a *Auth, line int) {
	if a == nil {
		return
	}
	at := func(key string) int {
		if l := v.pos.line(path + "." + key); l != 0 {
			return l
		}
		return line
	}
	if l := v.pos.line(path + ".token"); l != 0 && a.Token == "" {
		// Refused rather than read as "no token": an unset ${VAR} must not
		// turn a check off.
		v.add(l, "%s.token is empty (is its ${VAR} set?)", path)
	} else if len(a.Token) > 0 && len(a.Token) < MinIngestTokenBytes {
		v.add(at("token"), "%s.token must be at least %d bytes (it is %d); use a long random one, e.g. openssl rand -hex 32",
			path, MinIngestTokenBytes, len(a.Token))
	} else if a.Token == "" && a.HMAC == nil && a.StandardWebhooks == nil && len(a.AllowIPs) == 0 {
		v.add(line, "%s sets no check: give token, hmac, standard_webhooks or allow_ips", path)
	}
	if h := a.HMAC; h != nil {
		hp := path + ".hmac"
		switch {
		case h.Header == "":
			v.add(at("hmac.header"), "%s.header is required", hp)
		case !validHeaderName(h.Header):
			v.add(at("hmac.header"), "%s.header %q is not a valid HTTP header name", hp, h.Header)
		}
		if strings.TrimSpace(h.Secret) == "" {
			v.add(at("hmac.secret"), "%s.secret is required", hp)
		}
		if !oneOf(h.Algorithm, hmacAlgorithms) {
			v.add(at("hmac.algorithm"), "%s.algorithm must be one of %s, got %q", hp, strings.Join(hmacAlgorithms, ", "), h.Algorithm)
		}
		if !oneOf(h.Encoding, hmacEncodings) {
			v.add(at("hmac.encoding"), "%s.encoding must be one of %s, got %q", hp, strings.Join(hmacEncodings, ", "), h.Encoding)
		}
	}
	if sw := a.StandardWebhooks; sw != nil {
		sp := path + ".standard_webhooks"
		if _, err := whsig.ParseKeys(sw.Secret); err != nil {
			// err names the secret's place in the list, never its value.
			v.add(at("standard_webhooks.secret"), "%s.secret: %v", sp, err)
		}
		if sw.Tolerance <= 0 {
			v.add(at("standard_webhooks.tolerance"), "%s.tolerance must be positive, got %s", sp, sw.Tolerance)
		}
	}
	v.cidrs(path+".allow_ips", a.AllowIPs)
}

// cidrs checks a list of CIDRs at path.
func (v *validator) cidrs(path string, list []string) {
	for i, s := range list {
		if _, err := ParseCIDR(s); err != nil {
			v.add(v.pos.line(fmt.Sprintf("%s.%d", path, i), path), "%s: %v", path, err)
		}
	}
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
