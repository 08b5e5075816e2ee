package relay_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay"
)

// BenchmarkOutage503 measures how long a callback waits for its 503 while
// Redis refuses connections (killed) and while it is frozen (SIGSTOP), with
// the default store.write_timeout. It reports the median and the slowest.
//
//	go test -run '^$' -bench Outage503 -benchtime 50x ./relay/
func BenchmarkOutage503(b *testing.B) {
	for _, fault := range []string{"refused", "frozen"} {
		b.Run(fault, func(b *testing.B) {
			srv := testredis.Start(b)
			crm, archive := newSink(b), newSink(b)
			text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n" +
				fmt.Sprintf("store: {redis: {url: %q, prefix: \"outage:\"}}\n", srv.URL()) +
				strings.NewReplacer("{{a}}", crm.URL, "{{b}}", archive.URL).Replace(fanOut)
			cfg, err := config.Load([]byte(text), "bench.yaml")
			if err != nil {
				b.Fatal(err)
			}
			r := relaytest.Start(b, cfg, relay.Options{})
			if fault == "refused" {
				srv.Kill()
			} else {
				srv.Freeze()
				defer srv.Thaw()
			}
			client := &http.Client{Timeout: 30 * time.Second}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				resp, err := client.Post(r.Ingest+"/hooks/1001", "application/json", strings.NewReader(fmt.Sprintf(`{"mid":"o-%d"}`, i)))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					b.Fatalf("status %d, want 503", resp.StatusCode)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
			b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
		})
	}
}
