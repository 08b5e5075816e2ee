package readme_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requireTool returns the path of tool, skipping the test when it is
// missing, except under CI=true where a missing tool fails it.
func requireTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true: a missing tool is a failure)", tool)
		}
		t.Skipf("%s is not installed: skipping", tool)
	}
	return p
}

// The systemd unit keeps the settings the README promises, and
// systemd-analyze verify finds nothing to say about it.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("deploy/relay.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"DynamicUser=yes", "StateDirectory=relay", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
		"ExecStart=/usr/local/bin/relay serve -config /etc/relay/relay.yaml",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(unit) {
			t.Errorf("deploy/relay.service lacks %q", want)
		}
	}
	analyze := requireTool(t, "systemd-analyze")
	// verify checks that ExecStart's binary exists: point it at one that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/relay"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", path)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The Dockerfile builds a static binary into a minimal image with CA
// certificates, a non-root user, both ports, a volume for the embedded
// store, and a health check through relay health. No Docker daemon is
// needed to read it; building it is left to CI machines that have one.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM golang:\S+ AS build$`),
		regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath`),
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static\S*:nonroot$`), // CA certificates, no shell
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^EXPOSE 8080 9090$`),
		regexp.MustCompile(`(?m)^VOLUME \["/data"\]$`),
		regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/relay", "health"\]$`),
		regexp.MustCompile(`(?m)^COPY deploy/relay\.yaml /etc/relay/relay\.yaml$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	// The config the image runs must load, with the store in the volume.
	checkConfig(t, "deploy/relay.yaml")
}

// checkConfig runs relay check on a deploy config with the environment
// the deployment gives it.
func checkConfig(t *testing.T, file string) {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/relay", "check", "-config", file)
	cmd.Env = append(os.Environ(), "RELAY_ADMIN_TOKEN=a-token-for-the-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("relay check %s: %v\n%s", file, err, out)
	}
}

// deploy/compose.yaml runs Redis with AOF everysec on a volume, two relay
// replicas on the Redis config, and the sink; docker compose config must
// accept it where the compose plugin is installed.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image       string   `yaml:"image"`
			Command     []string `yaml:"command"`
			Volumes     []string `yaml:"volumes"`
			Ports       []string `yaml:"ports"`
			Environment map[string]string
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	redis := c.Services["redis"]
	if cmd := strings.Join(redis.Command, " "); !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--appendfsync everysec") {
		t.Errorf("redis command %q: want AOF with everysec", cmd)
	}
	if !slices.Contains(redis.Volumes, "redis-data:/data") || c.Volumes == nil {
		t.Errorf("redis volumes %v: want the named volume redis-data on /data", redis.Volumes)
	}
	for _, name := range []string{"relay-1", "relay-2"} {
		r := c.Services[name]
		if r.Image != "relay:local" || !slices.Contains(r.Volumes, "./relay.redis.yaml:/etc/relay/relay.yaml:ro") || len(r.Ports) != 2 {
			t.Errorf("%s: %+v; want the relay image on deploy/relay.redis.yaml with both ports published", name, r)
		}
	}
	if s := c.Services["sink"]; !slices.Contains(s.Command, "sink") {
		t.Errorf("sink: %+v", s)
	}
	checkConfig(t, "deploy/relay.redis.yaml")

	docker, err := exec.LookPath("docker")
	if err != nil || exec.Command(docker, "compose", "version").Run() != nil {
		// Not even under CI=true: the compose plugin is not part of the
		// Debian image CI runs on, and the checks above read the file.
		t.Skip("docker compose is not installed: skipping docker compose config")
	}
	cmd := exec.Command(docker, "compose", "-f", "deploy/compose.yaml", "config", "-q")
	cmd.Env = append(os.Environ(), "RELAY_ADMIN_TOKEN=a-token-for-the-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

// make dist builds static binaries with SHA256SUMS. The test builds one
// platform (the others only differ in GOOS/GOARCH) to stay fast.
func TestMakeDist(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: make dist compiles relay")
	}
	requireTool(t, "make")
	out := t.TempDir()
	platform := "linux/" + runtime.GOARCH
	cmd := exec.Command("make", "dist", "PLATFORMS="+platform, "DIST="+out, "VERSION=v0.0.0-test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "relay-v0.0.0-test-linux-"+runtime.GOARCH)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  " + filepath.Base(bin) + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
	if runtime.GOOS == "linux" {
		v, err := exec.Command(bin, "version").Output()
		if err != nil || !strings.HasPrefix(string(v), "relay v0.0.0-test\n") || strings.Contains(string(v), "commit  unknown") && hasGit() {
			t.Errorf("relay version of the dist binary: %v\n%s", err, v)
		}
		// Static: no dynamic section, so no interpreter to load it.
		if f, err := exec.Command("file", bin).Output(); err == nil && !bytes.Contains(f, []byte("statically linked")) {
			t.Errorf("not a static binary: %s", f)
		}
	}
}

func hasGit() bool { return exec.Command("git", "rev-parse", "HEAD").Run() == nil }
