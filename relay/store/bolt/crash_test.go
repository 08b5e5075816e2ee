package bolt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

// crashDirEnv tells a re-executed test binary to act as the crashing child.
const crashDirEnv = "RELAY_BOLT_CRASH_DIR"

const (
	crashLeased  = "leased-dest"
	crashDest    = "busy-dest"
	crashWriters = 16
)

// TestCrashChild is the process that TestKill9 kills; it does nothing in a
// normal run. It leases some deliveries and then accepts events from several
// goroutines, printing a line for each call that returned, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestKill9")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	ctx := context.Background()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	for i := range 3 {
		if _, err := s.Accept(ctx, event(-1-i), []string{crashLeased}, store.Dedupe{}); err != nil {
			say("error %v", err)
			return
		}
	}
	ds, err := s.Lease(ctx, crashLeased, 3, time.Hour)
	if err != nil || len(ds) != 3 {
		say("error lease: %d, %v", len(ds), err)
		return
	}
	for _, d := range ds {
		say("leased %s", d.ID)
	}
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			for i := g; ; i += crashWriters {
				key := store.Dedupe{Key: fmt.Sprintf("mid-%d", i), TTL: time.Hour}
				res, err := s.Accept(ctx, event(i), []string{crashDest}, key)
				if err != nil {
					say("error %v", err)
					return
				}
				say("ok %d %s", i, res.EventID)
			}
		})
	}
	wg.Wait()
}

// TestKill9 kills a process mid-write with SIGKILL and checks that every
// Accept that returned is on disk, that every leased delivery is due again at
// once, and that the counters still match the data.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	leased := map[string]bool{}
	accepted := map[int]string{}
	lines := bufio.NewScanner(out)
	killed := false
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 2 && f[0] == "leased":
			leased[f[1]] = true
		case len(f) == 3 && f[0] == "ok":
			var i int
			if _, err := fmt.Sscan(f[1], &i); err != nil {
				t.Fatalf("child said %q", lines.Text())
			}
			accepted[i] = f[2]
		case len(f) > 0 && f[0] == "error":
			t.Fatalf("child: %s", lines.Text())
		}
		// Lines already written before the kill still count as answered.
		if !killed && len(accepted) >= 200 {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d accepts without being killed", len(accepted))
	}

	s := openTest(t, dir)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	checkIntegrity(t, s)
	for i, id := range accepted {
		rec, err := s.Event(ctx, id)
		if err != nil {
			t.Fatalf("answered event %d (%s) lost: %v", i, id, err)
		}
		if string(rec.Event.Body) != string(storetest.SeedBody(i)) {
			t.Fatalf("event %s body = %q, want %q", id, rec.Event.Body, storetest.SeedBody(i))
		}
		res, err := s.Accept(ctx, event(i), []string{crashDest}, store.Dedupe{Key: fmt.Sprintf("mid-%d", i), TTL: time.Hour})
		if err != nil || !res.Duplicate || res.EventID != id {
			t.Fatalf("retry of event %d = %+v, %v; want duplicate of %s", i, res, err, id)
		}
	}
	ds, err := s.Lease(ctx, crashLeased, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(leased) {
		t.Fatalf("after the crash %d deliveries leasable, want the %d that were leased", len(ds), len(leased))
	}
	for _, d := range ds {
		if !leased[d.ID] {
			t.Fatalf("leased %s, which was not in flight", d.ID)
		}
	}
	t.Logf("%d answered accepts survived kill -9", len(accepted))
}
