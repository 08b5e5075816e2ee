package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	misspelt := filepath.Join(dir, "misspelt.yaml")
	os.WriteFile(misspelt, []byte(`routes:
  - webhook_id: "1001"
    to: [crm]
destinations:
  - name: crm
    url: "http://127.0.0.1:9999/x"
    retyr: {max_attempts: 3}
`), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"example", []string{"check", "-config", "../../relay.example.yaml"}, 0,
			[]string{"1001 -> acme-crm, acme-archive", "1002 [status=ANSWER] -> acme-crm"}},
		{"misspelt key", []string{"check", "-config", misspelt}, 1,
			[]string{misspelt + ":7: "}},
		{"missing file", []string{"check", "-config", filepath.Join(dir, "nope.yaml")}, 1,
			[]string{"nope.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q does not contain %q", out.String(), w)
				}
			}
		})
	}
}

func TestCheckUsesRelayConfigEnv(t *testing.T) {
	t.Setenv("RELAY_CONFIG", "../../relay.example.yaml")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "relay ") {
		t.Fatalf("exit %d, out %q", code, out.String())
	}
}

// TestCheckAgreesWithServe runs the real binary: every config that `relay
// serve` refuses, `relay check` refuses with the same FILE:LINE problems,
// and neither shows a password or query value of a URL it quotes.
func TestCheckAgreesWithServe(t *testing.T) {
	const base = "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"
	tests := []struct {
		name string
		text string // after base
		want string // in the problem, after FILE:LINE
	}{
		{"whsec secret that is not base64", "store: {embedded: {path: DATA}}\ndestinations:\n" +
			"  - {name: crm, url: \"http://127.0.0.1:1/x?token=s3cret\", signing_secret: \"whsec_not*base64\"}\n",
			`:5: destination "crm": signing_secret: secret 1: whsec_ value is not base64`},
		{"redis password read as a port", "store: {redis: {url: \"redis://default:Pa55\"}}\n",
			`:3: store.redis.url: not a valid URL: invalid port "xxxxx" after host`},
		{"redis option go-redis refuses", "store: {redis: {url: \"redis://:Pa55@127.0.0.1:1/0?token=s3cret\"}}\n",
			`:3: store.redis.url: "redis://:xxxxx@127.0.0.1:1/0?token=xxxxx": redis: unexpected option: token`},
		{"destination url with a token", "store: {embedded: {path: DATA}}\ndestinations:\n" +
			"  - {name: crm, url: \"ftp://u:Pa55@files.example/x?token=s3cret\"}\n",
			`:5: destination "crm": url "ftp://xxxxx:xxxxx@files.example/x?token=xxxxx" is not an absolute http:// or https:// URL`},
		{"short agent token", "store: {embedded: {path: DATA}}\nagents: [{name: office-1, token: s3cret}]\n",
			`:4: agent "office-1": token must be at least 16 bytes (it is 6)`},
		{"open admin without a token", "store: {embedded: {path: DATA}}\n",
			`admin.listen "0.0.0.0:0" is reachable from other hosts and admin.token is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "relay.yaml")
			text := base + strings.ReplaceAll(tt.text, "DATA", filepath.Join(dir, "data"))
			if strings.HasPrefix(tt.name, "open admin") {
				text = strings.Replace(text, "127.0.0.1:0}", "0.0.0.0:0}", 1)
			}
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var outputs []string
			for _, cmd := range []string{"check", "serve"} {
				c := exec.Command(relayBin, cmd, "-config", path)
				var out bytes.Buffer
				c.Stdout, c.Stderr = &out, &out
				err := c.Run()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Fatalf("relay %s: %v, output:\n%s\nwant exit 1", cmd, err, out.String())
				}
				got := strings.TrimSpace(out.String())
				if !strings.HasPrefix(got, path) || !strings.Contains(got, tt.want) {
					t.Errorf("relay %s said:\n%s\nwant %s%s", cmd, got, path, tt.want)
				}
				for _, secret := range []string{"Pa55", "s3cret"} {
					if strings.Contains(got, secret) {
						t.Errorf("relay %s shows %q:\n%s", cmd, secret, got)
					}
				}
				outputs = append(outputs, got)
			}
			if outputs[0] != outputs[1] {
				t.Errorf("check and serve disagree:\ncheck: %s\nserve: %s", outputs[0], outputs[1])
			}
		})
	}
}
