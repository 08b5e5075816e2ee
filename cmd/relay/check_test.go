package main

import (
	"bytes"
	"context"
	"os"
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
