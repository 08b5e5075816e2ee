package config

import (
	"strings"
	"testing"
)

// TestLoadAuthProblems checks every auth and ingest-limit problem is
// reported at its FILE:LINE, and that no message quotes a secret.
func TestLoadAuthProblems(t *testing.T) {
	file := "testdata/bad_auth.yaml"
	got := problemLines(t, file)
	want := []string{
		`6: ingest.auth.hmac.algorithm must be one of sha256, sha1, sha512, got "md5"`,
		`7: ingest.auth.hmac.encoding must be one of hex, base64, got "base32"`,
		`9: ingest.auth.standard_webhooks.secret: secret 1: whsec_ value is not base64`,
		`10: ingest.auth.standard_webhooks.tolerance must be positive, got -1m0s`,
		`11: ingest.auth.allow_ips: "10.0.0.300/8" is not a CIDR (203.0.113.0/24) or an IP address`,
		`12: ingest.trusted_proxies: "not-a-network" is not a CIDR (203.0.113.0/24) or an IP address`,
		`13: ingest.rate_limit must be a finite number, 0 or more (0 = no limit)`,
		`14: ingest.max_concurrent must be positive, got -2`,
		`15: ingest.max_inflight_bytes (1024) must be at least ingest.max_body_bytes (1048576)`,
		`24: route 2: auth differs from route 1's (line 19) for webhook_id "1001"; routes sharing a webhook_id must agree on auth`,
		`27: routes.2.auth sets no check: give token, hmac, standard_webhooks or allow_ips`,
		`30: routes.3.auth.hmac.header is required`,
		`34: routes.4.auth.token is empty (is its ${VAR} set?)`,
		`38: routes.5.auth.token must be at least 16 bytes (it is 12); use a long random one, e.g. openssl rand -hex 32`,
		`41: admin.trusted_proxies: "10.0.0.0/33" is not a CIDR (203.0.113.0/24) or an IP address`,
	}
	for i := range want {
		want[i] = file + ":" + want[i]
	}
	assertLines(t, got, want)
	for _, secret := range []string{"s3cr3t-hmac-value", "not*base64", "route-secret", "short-secret"} {
		for _, line := range got {
			if strings.Contains(line, secret) {
				t.Errorf("problem quotes a secret: %s", line)
			}
		}
	}
}

// TestLoadAuthDefaults checks the defaults an auth block gets, and that a
// secret given as ${VAR} is expanded like any other value.
func TestLoadAuthDefaults(t *testing.T) {
	t.Setenv("RELAY_TEST_HMAC", "from-env")
	c, err := Load([]byte(`
ingest:
  auth:
    hmac: {header: X-Sig, secret: "${RELAY_TEST_HMAC}"}
    standard_webhooks: {secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    allow_ips: [192.0.2.7]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Ingest.Auth
	if a.HMAC.Algorithm != "sha256" || a.HMAC.Encoding != "hex" || a.HMAC.Secret != "from-env" {
		t.Errorf("hmac %+v", *a.HMAC)
	}
	if a.StandardWebhooks.Tolerance.D() != DefaultWebhookTolerance {
		t.Errorf("tolerance %s", a.StandardWebhooks.Tolerance)
	}
	if c.Ingest.ParkedTTL.D() != DefaultParkedTTL || c.Ingest.MaxConcurrent != DefaultMaxConcurrent ||
		c.Ingest.MaxInflightBytes != DefaultMaxInflightBytes {
		t.Errorf("ingest limits %+v", c.Ingest)
	}
	if p, err := ParseCIDR(a.AllowIPs[0]); err != nil || p.String() != "192.0.2.7/32" {
		t.Errorf("ParseCIDR(%q) = %v, %v", a.AllowIPs[0], p, err)
	}
}
