package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testlog"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay"
)

// writeFault is a store that can be made to refuse writes while it still
// answers reads, and healed again.
type writeFault struct {
	storeYAML    string
	break_, heal func(t *testing.T)
}

// tinyDisk mounts a small tmpfs for an embedded store and returns a fault
// that fills it (a filler file until ENOSPC) and heals it by deleting the
// filler. Mounting needs root; elsewhere the test is skipped, except under
// CI=true where it fails.
func tinyDisk(t *testing.T) writeFault {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the full-disk test mounts a tmpfs and must run as root under CI=true")
		}
		t.Skip("the full-disk test mounts a tmpfs: run it as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	filler := filepath.Join(dir, "filler")
	return writeFault{
		storeYAML: "{embedded: {path: " + filepath.Join(dir, "data") + "}}",
		break_: func(t *testing.T) {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := make([]byte, 64<<10)
			for i := 0; i < 1024; i++ { // at most 64 MiB, far past the mount's size
				if _, err = f.Write(chunk); err != nil {
					break
				}
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v, want ENOSPC", err)
			}
		},
		heal: func(t *testing.T) {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// readOnlyRedis is a fault that makes Redis refuse writes (NOREPLICAS, as
// MISCONF or READONLY would) while it keeps answering PING and reads.
func readOnlyRedis(t *testing.T) writeFault {
	t.Helper()
	srv := testredis.Start(t)
	if srv.External() {
		t.Skip("the test changes the server's config; it needs a server of its own")
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	set := func(n string) func(t *testing.T) {
		return func(t *testing.T) {
			if err := rdb.ConfigSet(context.Background(), "min-replicas-to-write", n).Err(); err != nil {
				t.Fatalf("CONFIG SET min-replicas-to-write %s: %v", n, err)
			}
		}
	}
	return writeFault{
		storeYAML: fmt.Sprintf("{redis: {url: %q, prefix: \"health:\"}}", srv.URL()),
		break_:    set("1"),
		heal:      set("0"),
	}
}

// A store that answers reads but refuses writes makes /readyz answer 503
// and relay_store_up 0, and counts relay_store_write_errors_total, until
// a write succeeds again: then the relay is ready without any callback
// arriving (the readiness check's probe write).
func TestReadinessCoversWrites(t *testing.T) {
	for name, fault := range map[string]func(t *testing.T) writeFault{
		"embedded full disk":         tinyDisk,
		"redis refusing writes (ro)": readOnlyRedis,
	} {
		t.Run(name, func(t *testing.T) {
			f := fault(t)
			crm, archive := newSink(t), newSink(t)
			text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstore: " + f.storeYAML + "\n" +
				"delivery: {poll_interval: 50ms}\n" + strings.NewReplacer("{{a}}", crm.URL, "{{b}}", archive.URL).Replace(fanOut)
			cfg, err := config.Load([]byte(text), "test.yaml")
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			r := &running{Relay: relaytest.Start(t, cfg, relay.Options{})}

			wantReady(t, r, http.StatusOK)
			m := r.metrics(t)
			if m["relay_store_up{}"] != 1 || m["relay_store_write_errors_total{}"] != 0 {
				t.Fatalf("before the fault: store_up %v write_errors %v, want 1 and 0", m["relay_store_up{}"], m["relay_store_write_errors_total{}"])
			}

			f.break_(t)
			// Large bodies, so the embedded store needs pages the disk no
			// longer has; each has its own mid.
			refused := false
			for i := 0; i < 200 && !refused; i++ {
				body := fmt.Sprintf(`{"mid":"m-%d","pad":"%s"}`, i, strings.Repeat("x", 64<<10))
				code, _ := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(body))
				refused = code == http.StatusServiceUnavailable
			}
			if !refused {
				t.Fatal("no callback was refused with 503 while the store refused writes")
			}
			wantReady(t, r, http.StatusServiceUnavailable)
			m = r.metrics(t)
			if m["relay_store_up{}"] != 0 {
				t.Errorf("relay_store_up = %v while writes are refused, want 0", m["relay_store_up{}"])
			}
			if m["relay_store_write_errors_total{}"] < 1 {
				t.Errorf("relay_store_write_errors_total = %v, want at least 1", m["relay_store_write_errors_total{}"])
			}

			f.heal(t)
			// No callback arrives: the readiness check's own probe write,
			// made once the store has been idle for store.ProbeIdle, finds
			// that it can write again.
			eventually(t, "/readyz answers 200", func() bool { return readyStatus(t, r) == http.StatusOK })
			if m = r.metrics(t); m["relay_store_up{}"] != 1 {
				t.Errorf("relay_store_up = %v after the store healed, want 1", m["relay_store_up{}"])
			}
			code, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"after"}`))
			if code != http.StatusAccepted {
				t.Errorf("a callback after the store healed: %d %+v, want 202", code, a)
			}
		})
	}
}

// wantReady checks /readyz's status.
func wantReady(t *testing.T, r *running, want int) {
	t.Helper()
	resp, err := http.Get(r.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("/readyz: %d %s, want %d", resp.StatusCode, bytes.TrimSpace(body), want)
	}
}

func readyStatus(t *testing.T, r *running) int {
	t.Helper()
	resp, err := http.Get(r.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A frozen Redis (SIGSTOP: connections open, nothing answers) gets a
// callback a 503 with Retry-After once store.write_timeout (300ms here)
// passes, not a request that hangs; /readyz answers 503 too. The client's
// own timeout, many times the write timeout, is there so that the test
// fails instead of hanging (ingest used to wait a fixed 10s).
func TestFrozenRedisAnswers503(t *testing.T) {
	srv := testredis.Start(t)
	crm, archive := newSink(t), newSink(t)
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n" +
		fmt.Sprintf("store: {redis: {url: %q, prefix: \"frozen:\"}, write_timeout: 300ms}\n", srv.URL()) +
		"delivery: {poll_interval: 50ms}\n" + strings.NewReplacer("{{a}}", crm.URL, "{{b}}", archive.URL).Replace(fanOut)
	cfg, err := config.Load([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r := &running{Relay: relaytest.Start(t, cfg, relay.Options{})}
	if code, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(`{"mid":"warm"}`)); code != http.StatusAccepted {
		t.Fatalf("before the freeze: %d %+v", code, a)
	}
	srv.Freeze()
	defer srv.Thaw()

	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Post(r.Ingest+"/hooks/1001", "application/json", strings.NewReader(fmt.Sprintf(`{"mid":"f-%d"}`, i)))
		if err != nil {
			t.Fatalf("callback %d while Redis is frozen: %v (want a 503, not a hang)", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("callback %d: %d Retry-After %q, want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	resp, err := client.Get(r.Admin + "/readyz")
	if err != nil {
		t.Fatalf("/readyz while Redis is frozen: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is frozen: %d, want 503", resp.StatusCode)
	}
}

// While Redis is down, every refused callback logs at most one line, and
// identical ones collapse into the first: 30 refused callbacks make one
// "store refused event" line, not 30 (or 60).
func TestRefusedCallbacksLogOnce(t *testing.T) {
	srv := testredis.Start(t)
	crm, archive := newSink(t), newSink(t)
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n" +
		fmt.Sprintf("store: {redis: {url: %q, prefix: \"quiet:\"}}\n", srv.URL()) +
		"delivery: {poll_interval: 50ms}\n" + strings.NewReplacer("{{a}}", crm.URL, "{{b}}", archive.URL).Replace(fanOut)
	cfg, err := config.Load([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var logs testlog.Buffer
	r := relaytest.Start(t, cfg, relay.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	srv.Kill()
	const n = 30
	for i := range n {
		if code, a := post(t, r.Ingest+"/hooks/1001", "application/json", []byte(fmt.Sprintf(`{"mid":"q-%d"}`, i))); code != http.StatusServiceUnavailable {
			t.Fatalf("callback %d: %d %+v, want 503", i, code, a)
		}
	}
	refused, loud := 0, 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="ingest: store refused event"`) {
			refused++
		}
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			loud++
		}
	}
	// A line with "(repeated" would only come after quietlog's interval,
	// on a very slow machine; it is not counted as a refusal's own line.
	if refused != 1 {
		t.Errorf("%d lines say the store refused an event, want 1:\n%s", refused, logs.String())
	}
	if loud >= n {
		t.Errorf("%d warning and error lines for %d refused callbacks:\n%s", loud, n, logs.String())
	}
}
