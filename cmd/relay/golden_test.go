package main

import (
	"bytes"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the binary's output")

// goldenCase runs the relay binary with args in dir (a fresh temp dir when
// empty) and env, and compares exit code, stdout and stderr with
// testdata/NAME.golden.
type goldenCase struct {
	name  string
	args  []string
	env   []string
	files map[string]string // written into the working directory first
}

// TestCLIGolden pins what a user sees for help and for each error case of
// issue 19, from the real binary: the exit code, stdout and stderr.
// go test -run TestCLIGolden -update ./cmd/relay rewrites the files.
func TestCLIGolden(t *testing.T) {
	rcv := newReceiver(t)
	l := startLive(t, deadOnFirstFailure, rcv.URL)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(refusing.Close)

	// A second relay whose file, once edited, names a variable its
	// environment lacks: the reload is refused, and the CLI says whose
	// environment counts.
	edited := startLive(t, deadOnFirstFailure, rcv.URL)
	if err := os.WriteFile(edited.cfgPath, []byte(strings.Replace(edited.header, "token: "+opsToken, "token: ${GOLDEN_UNSET_ADMIN_TOKEN}", 1)+
		strings.ReplaceAll(deadOnFirstFailure, "{{sink}}", rcv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []goldenCase{
		{name: "reload-unset-variable", args: []string{"reload", "-admin", edited.admin}, env: []string{"RELAY_ADMIN_TOKEN=" + opsToken, "GOLDEN_UNSET_ADMIN_TOKEN=set-here-only"}},
		{name: "help", args: []string{"help"}},
		{name: "no-args", args: nil},
		{name: "version-flag", args: []string{"-v"}},
		{name: "version-long-flag", args: []string{"--version"}},
		{name: "unknown-command", args: []string{"serv"}},
		{name: "unknown-subcommand", args: []string{"dlq", "lst"}},
		{name: "bad-flag", args: []string{"check", "-confg", "x.yaml"}},
		{name: "check-empty-file", args: []string{"check", "-config", "relay.yaml"}, files: map[string]string{"relay.yaml": "# nothing yet\n"}},
		{name: "check-missing-file", args: []string{"check"}},
		{name: "serve-missing-file", args: []string{"serve"}},
		{name: "check-tab", args: []string{"check", "relay.yaml"}, files: map[string]string{"relay.yaml": "admin:\n\tlisten: 127.0.0.1:9090\n"}},
		{name: "check-url-without-scheme", args: []string{"check", "relay.yaml"}, files: map[string]string{"relay.yaml": "routes: [{webhook_id: '1', to: [a]}]\ndestinations:\n  - {name: a, url: '127.0.0.1:38917/x'}\n"}},
		{name: "check-unset-variables", args: []string{"check", "relay.yaml"}, files: map[string]string{"relay.yaml": "admin:\n  token: ${RELAY_ADMN_TOKEN}\nroutes: [{webhook_id: '1', to: [a]}]\ndestinations:\n  - {name: a, url: 'http://127.0.0.1:9999/${SINK_PTH}'}\n"}},
		{name: "check-warning-only", args: []string{"check", "relay.yaml"}, files: map[string]string{"relay.yaml": "routes: [{webhook_id: '1', to: [a]}]\ndestinations:\n  - {name: a, url: 'http://127.0.0.1:9999/${SINK_PTH}'}\n"}},
		{name: "admin-at-ingest", args: []string{"dlq", "list", "-admin", l.ingest}, env: []string{"RELAY_ADMIN_TOKEN=" + opsToken}},
		{name: "events-get-flag-after-id", args: []string{"events", "get", "evt_nosuch", "--json", "-admin", l.admin}, env: []string{"RELAY_ADMIN_TOKEN=" + opsToken}},
		{name: "dlq-list-quiet-empty", args: []string{"dlq", "list", "-q", "-admin", l.admin}, env: []string{"RELAY_ADMIN_TOKEN=" + opsToken}},
		{name: "health-down", args: []string{"health", "-admin", "http://127.0.0.1:1"}},
		{name: "health-at-ingest", args: []string{"health", "-admin", l.ingest}},
		{name: "send-no-webhook", args: []string{"send"}},
		{name: "agent-no-token", args: []string{"agent", "-server", "https://relay.example.com", "-name", "office-1"}},
		{name: "agent-refused", args: []string{"agent", "-server", refusing.URL, "-insecure", "-name", "office-1", "-max-auth-failures", "2"}, env: []string{"RELAY_AGENT_TOKEN=wrong-token"}},
	}
	for _, c := range commands() {
		cases = append(cases, goldenCase{name: "help-" + c.help.name, args: []string{c.help.name, "-h"}})
	}
	for _, sub := range []string{"dlq list", "dlq replay", "dlq delete", "events list", "events get", "events tail", "parked list", "parked replay"} {
		cases = append(cases, goldenCase{name: "help-" + strings.ReplaceAll(sub, " ", "-"), args: append(strings.Fields(sub), "-h")})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runGolden(t, tc, map[string]string{l.ingest: "INGEST_URL", l.admin: "ADMIN_URL", refusing.URL: "REFUSING_URL",
				edited.admin: "EDITED_ADMIN_URL", edited.cfgPath: "EDITED_CONFIG"})
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("relay %s:\n--- got\n%s\n--- want\n%s", strings.Join(tc.args, " "), got, want)
			}
		})
	}
}

// runGolden runs the binary and renders what it did, with the parts that
// change from run to run (URLs of test servers, times, the Go version)
// replaced by names.
func runGolden(t *testing.T, tc goldenCase, urls map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range tc.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(relayBin, tc.args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, tc.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	render := func(s string) string {
		for u, name := range urls {
			s = strings.ReplaceAll(s, u, name)
		}
		s = strings.ReplaceAll(s, runtime.Version(), "GOVERSION")
		s = logTime.ReplaceAllString(s, "time=TIME")
		s = retryIn.ReplaceAllString(s, "retry_in=WAIT")
		s = stamp.ReplaceAllString(s, "  $1 STAMP")
		s = strings.ReplaceAll(s, runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH")
		return s
	}
	return render("$ relay "+strings.Join(tc.args, " ")) + "\nexit " + strconv.Itoa(code) +
		"\n--- stdout\n" + render(stdout.String()) + "--- stderr\n" + render(stderr.String())
}

var (
	logTime = regexp.MustCompile(`time=\S+`)
	retryIn = regexp.MustCompile(`retry_in=\S+`)
	stamp   = regexp.MustCompile(`(?m)^  (commit|built) +.*$`)
)

// The version comes from the ldflags stamp where make set one, else from
// the toolchain's build info.
func TestResolveVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name  string
		stamp buildStamp
		info  *debug.BuildInfo
		want  string
	}{
		{"go install", buildStamp{}, info, "relay v1.4.0\n  commit  0123456789ab-dirty\n  built   2026-12-01T10:00:00Z\n  go      go1.26 linux/amd64\n"},
		{"make build", buildStamp{version: "v1.5.0-rc1", commit: "feedface", date: "2026-12-02T00:00:00Z"}, info,
			"relay v1.5.0-rc1\n  commit  feedface\n  built   2026-12-02T00:00:00Z\n  go      go1.26 linux/amd64\n"},
		{"go build without VCS", buildStamp{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "relay devel\n  commit  unknown\n  built   unknown\n  go      go1.26 linux/amd64\n"},
		{"no build info", buildStamp{}, nil, "relay devel\n  commit  unknown\n  built   unknown\n  go      go1.26 linux/amd64\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveVersion(tt.stamp, tt.info, "go1.26", "linux/amd64").String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// relay send without a file posts the provider's sample, which must stay
// the one the ingest tests use.
func TestSendSampleIsTheSeed(t *testing.T) {
	seed, err := os.ReadFile("../../relay/testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seed, seedBody) {
		t.Error("cmd/relay/seed.json differs from relay/testdata/seed.json: copy it over")
	}
}
