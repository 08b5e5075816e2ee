package relay_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
)

// BenchmarkSlowBody is the slow-body attack: slowBodyConns connections
// each send the headers of a 1 MiB callback and all of its body but the
// last byte, then wait. It reports the process's resident memory with
// every connection holding (rss-MB) and its peak (peak-rss-MB), both
// counted from what the process held before (so the relay's own start is
// left out), with the ingest caps at their defaults ("capped") and lifted
// ("uncapped", as before the caps existed). Linux only: it reads
// /proc/self/status. Run with -benchtime 1x; each iteration is one attack.
func BenchmarkSlowBody(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/self/status")
	}
	conns := 300
	if s := os.Getenv("RELAY_BENCH_SLOW_CONNS"); s != "" {
		conns, _ = strconv.Atoi(s)
	}
	for _, tc := range []struct{ name, ingest string }{
		{"capped", ""},
		{"uncapped", "ingest: {max_concurrent: 1000000, max_inflight_bytes: 1000000000000}\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				slowBodyRun(b, tc.ingest, conns)
			}
		})
	}
}

func slowBodyRun(b *testing.B, ingest string, conns int) {
	cfg, err := config.Load([]byte("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"+
		"store: {embedded: {path: "+b.TempDir()+"}}\n"+ingest+
		"routes: [{webhook_id: \"1001\", to: [crm]}]\n"+
		"destinations: [{name: crm, url: \"http://127.0.0.1:9/\"}]\n"), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	r := relaytest.Start(b, cfg, relay.Options{})
	defer r.Stop()
	addr := strings.TrimPrefix(r.Ingest, "http://")

	const size = 1 << 20
	body := bytes.Repeat([]byte("x"), size)
	head := fmt.Appendf(nil, "POST /hooks/1001 HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	runtime.GC()
	before := procStatus(b, "VmRSS")
	resetPeak()

	held := make([]net.Conn, 0, conns)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(head); err != nil {
				return
			}
			// A refused callback is answered while its body is still being
			// sent, and its connection closed: the write may fail.
			_, _ = c.Write(body[:size-1])
		})
	}
	wg.Wait()
	// The writes end once the kernel has taken the bytes, not when the
	// relay has read them: wait until the relay's memory stops growing.
	settled(b, time.Second, 20*time.Second)
	b.ReportMetric(float64(procStatus(b, "VmRSS")-before)/(1<<20), "rss-MB")
	b.ReportMetric(float64(procStatus(b, "VmHWM")-before)/(1<<20), "peak-rss-MB")
	m := (&running{Relay: r}).metrics(b)
	b.ReportMetric(m["relay_ingest_requests_total{outcome=busy}"], "refused-503")
	for _, c := range held {
		c.Close()
	}
}

// settled waits until VmRSS has not grown for quiet, or for at most limit.
func settled(b *testing.B, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	last, since := procStatus(b, "VmRSS"), time.Now()
	for time.Now().Before(end) && time.Since(since) < quiet {
		time.Sleep(50 * time.Millisecond)
		if now := procStatus(b, "VmRSS"); now > last+(1<<20) {
			last, since = now, time.Now()
		}
	}
}

// procStatus reads a memory line of /proc/self/status, in bytes.
func procStatus(b *testing.B, key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", key)
	return 0
}

// resetPeak resets VmHWM to the current RSS (Linux: writing 5 to
// clear_refs), so each run's peak is its own.
func resetPeak() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
