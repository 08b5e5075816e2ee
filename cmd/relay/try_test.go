package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// uncommentExamples returns relay.example.yaml with the jq examples (the
// lines between the ">>> jq examples" and "<<< jq examples" markers)
// uncommented, as a user would.
func uncommentExamples(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../relay.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hash := regexp.MustCompile(`^(\s*)# `)
	var out []string
	on, blocks := false, 0
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.Contains(line, "# >>> jq examples"):
			on, blocks = true, blocks+1
			continue
		case strings.Contains(line, "# <<< jq examples"):
			on = false
			continue
		case on:
			line = hash.ReplaceAllString(line, "$1")
		}
		out = append(out, line)
	}
	if blocks != 2 {
		t.Fatalf("relay.example.yaml has %d jq example blocks, want 2 (routes and destinations)", blocks)
	}
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// relayRun runs the real binary and returns its exit code and output.
func relayRun(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Fatalf("relay %v: %v", args, err)
	}
	return 0, out.String(), errOut.String()
}

// TestTryExamples runs the worked examples of relay.example.yaml (and
// docs/transform.md) as written: uncommented, the file checks, and relay
// try shows each destination its own shape of the seed callback.
func TestTryExamples(t *testing.T) {
	cfg := uncommentExamples(t)
	seed := "../../relay/testdata/seed.json"
	short := filepath.Join(t.TempDir(), "short.json")
	raw, _ := os.ReadFile(seed)
	os.WriteFile(short, bytes.Replace(raw, []byte(`"duration": "23"`), []byte(`"duration": "5"`), 1), 0o600)
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte(`routes:
  - {webhook_id: "1", filter: '.status | tonumber > 1', to: [a]}
  - {webhook_id: "1", to: [a]}
destinations:
  - name: a
    url: "http://127.0.0.1:9999/a"
    headers: {X-Api-Key: sekrit}
    transform: {body: '.duration | tonumber | . / 0'}
`), 0o600)

	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
		want     []string
		notWant  []string
	}{
		{name: "check", args: []string{"check", "-config", cfg}, want: []string{
			"1003 -> beta-crm, gamma-forms",
			`1003 filter .status == "ANSWER" and (.duration|tonumber) > 10 -> delta-calls`,
		}},
		{name: "all three shapes", args: []string{"try", "-config", cfg, "-webhook", "1003", seed}, want: []string{
			"body: 351 bytes, read as json",
			"1003 -> beta-crm, gamma-forms: matched",
			"-> delta-calls: matched",
			"destinations: beta-crm, gamma-forms, delta-calls",
			"=== beta-crm (transformed)\nContent-Type: application/json\nX-Call-Id: 1234-1333-XXXXX\n\n" +
				`{"outcome":"ANSWER","phone":"91886713XXXX","seconds":23}`,
			"=== gamma-forms (transformed)\nContent-Type: application/x-www-form-urlencoded\n\n" +
				"callee=91886713XXXX&caller=91891952XXXX&duration=23&status=ANSWER",
			"=== delta-calls (transformed)\nContent-Type: application/json\n\n" +
				`{"call_id":"1234-1333-XXXXX","recording":{"link":"https://youraudiofilelocation/"},"seconds":23}`,
		}},
		{name: "short call fails the filter", args: []string{"try", "-config", cfg, "-webhook", "1003", short}, want: []string{
			"-> delta-calls: not matched: the filter did not yield true",
			"destinations: beta-crm, gamma-forms\n",
		}, notWant: []string{"=== delta-calls"}},
		{name: "one destination from stdin", args: []string{"try", "-config", cfg, "-webhook", "1003", "-destination", "gamma-forms", "-"},
			stdin: raw, want: []string{"=== gamma-forms (transformed)", "callee=91886713XXXX"},
			notWant: []string{"=== beta-crm", "=== delta-calls"}},
		{name: "untransformed destination", args: []string{"try", "-config", cfg, "-webhook", "1001", seed}, want: []string{
			"=== acme-crm (original bytes)\nContent-Type: application/octet-stream\n(also sent, not shown: X-Api-Key)\n\n{\n",
			`"recording_url": "https://youraudiofilelocation/",` + "\n}\n",
		}, notWant: []string{"demo-key"}},
		{name: "form body", args: []string{"try", "-config", cfg, "-webhook", "1003", "-destination", "beta-crm",
			"-content-type", "application/x-www-form-urlencoded", "-"},
			stdin: []byte("to=%2B9188&status=BUSY&duration=0&mid=m-1"),
			want:  []string{"read as form", `{"outcome":"BUSY","phone":"+9188","seconds":0}`, "X-Call-Id: m-1"}},
		{name: "non-JSON body", args: []string{"try", "-config", cfg, "-webhook", "1003", "-destination", "beta-crm", "-content-type", "text/plain", "-"},
			stdin: []byte("call answered"), wantCode: 1,
			want: []string{"=== beta-crm: transform: input: body is not JSON or a form (content type text/plain)", "would dead-letter"}},
		{name: "failing filter and transform", args: []string{"try", "-config", broken, "-webhook", "1", seed}, wantCode: 1,
			want: []string{
				`not matched: transform: filter: jq: tonumber cannot be applied to "ANSWER"`,
				"=== a: transform: body: jq: cannot divide number (23) by: number (0)",
			}, notWant: []string{"sekrit"}},
		{name: "unknown destination", args: []string{"try", "-config", cfg, "-webhook", "1003", "-destination", "nope", seed},
			wantCode: 1, want: []string{`unknown destination "nope"`}},
		{name: "no webhook", args: []string{"try", "-config", cfg, seed}, wantCode: 2},
		{name: "help", args: []string{"try", "-h"}, want: []string{"Usage:\n  relay try", "Examples:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := relayRun(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out+errOut, w) {
					t.Errorf("output contains %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}
