package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// compactConfig writes a config whose embedded store is in dir.
func compactConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte("store: {embedded: {path: "+dir+"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runBin runs the relay binary and returns its exit code and output.
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(relayBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("run relay: %v", err)
	return 0, "", ""
}

// After a backlog has drained and been swept, `relay compact` gives the
// file's free pages back, and what the store still holds survives.
func TestCompactShrinksAndKeeps(t *testing.T) {
	dir := t.TempDir()
	// No sweep while the backlog is written and delivered: its walk would
	// pass the events before they finish.
	st, err := bolt.Open(dir, bolt.Options{SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 4096)
	const n = 2000
	// Concurrent accepts share commits, as under load.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ev := store.Event{WebhookID: "1001", Body: body, ReceivedAt: time.Now()}
			_, err := st.Accept(ctx, ev, []string{"crm"}, store.Dedupe{Key: fmt.Sprint(i), TTL: time.Millisecond})
			errs <- err
		})
	}
	wg.Wait()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	kept, err := st.Accept(ctx, store.Event{WebhookID: "1001", Body: []byte(`{"mid":"kept"}`), ReceivedAt: time.Now()}, []string{"erp"}, store.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	for done := 0; done < n; {
		ds, err := st.Lease(ctx, "crm", 500, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds { // without waiting, so they share commits
			st.Settle(ctx, d, store.Settlement{State: store.StateDelivered, Attempt: store.Attempt{N: 1, At: time.Now(), Status: 200}},
				func(err error) { errs <- err })
		}
		for range ds {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		done += len(ds)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened on a clock past the retention of everything delivered; one
	// sweep interval on, the sweep deletes it.
	clk := clock.NewFake(time.Now().Add(2 * time.Hour))
	if st, err = bolt.Open(dir, bolt.Options{Retention: time.Hour, Clock: clk}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(bolt.DefaultSweepInterval)
	deadline := time.Now().Add(30 * time.Second)
	for !onlyKept(ctx, st) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not delete the delivered events")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// While a relay holds the store, compact refuses after its timeout.
	cfg := compactConfig(t, dir)
	code, _, stderr := runBin(t, "compact", "-config", cfg, "-timeout", "200ms")
	if code != 1 || !strings.Contains(stderr, "stop the relay") {
		t.Errorf("compact while the store is open: exit %d, stderr %q; want 1 and a hint to stop the relay", code, stderr)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	before := fileSize(t, dir)
	code, stdout, stderr := runBin(t, "compact", "-config", cfg)
	if code != 0 {
		t.Fatalf("compact: exit %d: %s", code, stderr)
	}
	after := fileSize(t, dir)
	if after*4 > before {
		t.Errorf("compact: %d bytes -> %d; want a quarter or less after the backlog was swept (%s)", before, after, stdout)
	}
	t.Logf("%s", stdout)
	st, err = bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatalf("open after compact: %v", err)
	}
	defer st.Close()
	rec, err := st.Event(ctx, kept.EventID)
	if err != nil || string(rec.Event.Body) != `{"mid":"kept"}` || len(rec.Deliveries) != 1 {
		t.Fatalf("the kept event after compact: %+v, %v", rec, err)
	}
	if ds, err := st.Lease(ctx, "erp", 10, time.Minute); err != nil || len(ds) != 1 {
		t.Fatalf("its delivery after compact: %d leased, %v; want 1", len(ds), err)
	}
}

// onlyKept reports whether the store holds one event: the sweep has
// deleted the delivered ones.
func onlyKept(ctx context.Context, st *bolt.Store) bool {
	items, next, err := st.FindEvents(ctx, store.EventQuery{}, store.Page{Limit: 10})
	return err == nil && len(items) == 1 && next == ""
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
