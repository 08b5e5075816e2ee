package readme_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// block is one fenced ```sh block of the README.
type block struct {
	line int // of the opening fence
	text string
}

// shellBlocks returns the README's ```sh blocks in order. Blocks fenced as
// console, text, yaml or anything else are documentation, not run.
func shellBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []block
		cur   *block
		fence string
		n     int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := sc.Text()
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && fence == "" && strings.HasPrefix(trimmed, "```"):
			fence = "```"
			if info := strings.Fields(strings.TrimPrefix(trimmed, "```")); len(info) > 0 && info[0] == "sh" {
				cur = &block{line: n}
			}
		case fence != "" && trimmed == "```":
			if cur != nil {
				out = append(out, *cur)
			}
			cur, fence = nil, ""
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if fence != "" {
		t.Fatalf("%s: a fenced block is not closed", path)
	}
	return out
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestReadme runs every ```sh block of README.md, in order, in one bash
// (set -euo pipefail) in a fresh directory holding relay.example.yaml and
// bin/relay built from this tree, so the walkthrough cannot drift from the
// code. The README's ports are swapped for free ones in the script and the
// config (a developer's relay on 8080 must not answer for the test), and
// $RELAY_URL and $RELAY_ADMIN_URL point the CLI at them. Everything the
// script starts must be stopped by the script: processes left in its group
// fail the test (and are killed).
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the README walkthrough builds relay and runs for several seconds")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	blocks := shellBlocks(t, "README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```sh blocks")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "relay"), "./cmd/relay")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ports := map[string]string{}
	for _, p := range []string{"8080", "9090", "9999"} {
		ports[p] = freePort(t)
	}
	swap := func(s string) string {
		for from, to := range ports {
			s = strings.ReplaceAll(s, "127.0.0.1:"+from, "127.0.0.1:"+to)
		}
		return s
	}
	example, err := os.ReadFile("relay.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "relay.example.yaml"), []byte(swap(string(example))), 0o644); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString("echo '### README.md:" + strconv.Itoa(b.line) + "' >&2\n")
		script.WriteString(swap(b.text))
	}
	scriptPath := filepath.Join(dir, "readme.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Output goes to a file, not a pipe: a process the script leaves behind
	// would hold a pipe open and hide the very problem this test looks for.
	logPath := filepath.Join(dir, "output.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"TMPDIR=" + dir,
		"RELAY_URL=http://127.0.0.1:" + ports["8080"],
		"RELAY_ADMIN_URL=http://127.0.0.1:" + ports["9090"],
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	leftover := leftInGroup(cmd.Process.Pid)
	if os.Getenv("README_TEST_SHOW") != "" {
		defer func() { b, _ := os.ReadFile(logPath); t.Logf("output:\n%s", b) }()
	}
	out, _ := os.ReadFile(logPath)
	if runErr != nil || leftover {
		t.Logf("script:\n%s", script.String())
		t.Logf("output:\n%s", out)
	}
	if ctx.Err() != nil {
		t.Fatalf("the README walkthrough did not finish within 3 minutes (the last ### line above is the block it was in)")
	}
	if runErr != nil {
		t.Fatalf("the README walkthrough failed: %v (the last ### line above is the failing block)", runErr)
	}
	if leftover {
		t.Fatalf("the README walkthrough left processes running: its stop instructions do not stop what it started")
	}
	// What the walkthrough promises, checked on what it left behind: the
	// replayed dead letter reached the receiver that came back.
	sink, err := os.ReadFile(filepath.Join(dir, "sink.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POST /acme-crm -> 200", "POST /acme-archive -> 200", `"mid":"op-0001"`} {
		if !strings.Contains(string(sink), want) {
			t.Errorf("sink.log after the walkthrough lacks %q:\n%s", want, sink)
		}
	}
	for _, want := range []string{`"status":"accepted"`, `"status":"duplicate"`, "replayed 1 of 1 deliveries", "routed 1 parked callback",
		"QUEUED  DEAD  IN FLIGHT  CIRCUIT", "reloaded relay.yaml: 3 routes, 2 destinations",
		// Transformations: each client's shape of the sample body.
		"\n{\"outcome\":\"ANSWER\",\"phone\":\"91886713XXXX\",\"seconds\":23}\n",
		"\ncallee=91886713XXXX&caller=91891952XXXX&duration=23&status=ANSWER\n",
		"\n{\"call_id\":\"1234-1333-XXXXX\",\"recording\":{\"link\":\"https://youraudiofilelocation/\"},\"seconds\":23}\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out)
		}
	}
	// Security: the forged callback is refused and takes no claim, so the
	// provider's own for the same mid is accepted. The relay's log shares
	// the output, so its lines may fall between a body and its status.
	for _, want := range []string{`\{"error":"unauthorized"\}`, `"deliveries":1\}`} {
		status := map[bool]string{true: "401", false: "202"}[strings.Contains(want, "unauthorized")]
		re := regexp.MustCompile(`(?m)` + want + `\n(?:.*level=.*\n)*HTTP ` + status + `$`)
		if !re.Match(out) {
			t.Errorf("the walkthrough's output lacks %s answered HTTP %s:\n%s", want, status, out)
		}
	}
}

// leftInGroup reports whether any process of group pgid is still alive a
// few seconds after its leader ended, killing them if so.
func leftInGroup(pgid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return false
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
}
