package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCheckAuthProblems runs the real binary's check and serve on a file
// with bad auth settings: both refuse it with the same FILE:LINE lines,
// and neither prints a secret.
func TestCheckAuthProblems(t *testing.T) {
	file := "../../config/testdata/bad_auth.yaml"
	want := []string{
		file + `:6: ingest.auth.hmac.algorithm must be one of sha256, sha1, sha512, got "md5"`,
		file + `:9: ingest.auth.standard_webhooks.secret: secret 1: whsec_ value is not base64`,
		file + `:11: ingest.auth.allow_ips: "10.0.0.300/8" is not a CIDR (203.0.113.0/24) or an IP address`,
		file + `:24: route 2: auth differs from route 1's (line 19) for webhook_id "1001"; routes sharing a webhook_id must agree on auth`,
	}
	for _, cmd := range []string{"check", "serve"} {
		out, err := exec.Command(relayBin, cmd, "-config", file).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Fatalf("relay %s: %v, want a non-zero exit\n%s", cmd, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("relay %s output lacks %q:\n%s", cmd, w, out)
			}
		}
		for _, secret := range []string{"s3cr3t-hmac-value", "not*base64", "route-secret"} {
			if strings.Contains(string(out), secret) {
				t.Errorf("relay %s output quotes a secret (%s):\n%s", cmd, secret, out)
			}
		}
	}
}
