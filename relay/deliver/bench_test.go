package deliver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// benchBody is the size and shape of the provider's seed callback.
var benchBody = []byte(`{
      "bridge": 918068280000,
      "from": 918919520000,
      "to": 918867130000,
      "source": "OBD",
      "mid": "1234-1333-00000",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}`)

const benchConcurrency = 8

// BenchmarkDeliver measures deliveries per second to a local sink answering
// 200: "relay" runs b.N queued deliveries through a Manager (lease, attempt,
// record in the store), "net-http" is the floor: the same number of POSTs
// from benchConcurrency goroutines with a plain net/http client.
func BenchmarkDeliver(b *testing.B) {
	sk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(sk.Close)

	b.Run("relay", func(b *testing.B) {
		st := newTestStore(b)
		for i := range b.N {
			accept(b, st, store.Event{Body: benchBody, ContentType: "application/json", DedupeKey: fmt.Sprint("1001:", i)}, "sink")
		}
		d := dest("sink", sk.URL)
		d.Concurrency = benchConcurrency
		d.SigningSecret = vectorSecret
		var delivered atomic.Int64
		all := make(chan struct{})
		opts := testOptions()
		opts.OnAttempt = func(_ string, o Outcome, _ int, _ time.Duration) {
			if o == OutcomeSuccess && delivered.Add(1) == int64(b.N) {
				close(all)
			}
		}
		m, err := NewManager(st, []config.Destination{d}, opts)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.ResetTimer()
		start := time.Now()
		go func() { done <- m.Run(ctx) }()
		<-all
		cancel()
		<-done // the last outcomes are recorded before Run returns
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	})

	b.Run("net-http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}}
		b.Cleanup(client.CloseIdleConnections)
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for range benchConcurrency {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					resp, err := client.Post(sk.URL, "application/json", bytes.NewReader(benchBody))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	})
}
