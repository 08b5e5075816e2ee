package ingest_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
)

// BenchmarkServeHook measures the handler alone, with a store that answers
// at once: what ingest adds to every callback on top of net/http and the
// store write.
func BenchmarkServeHook(b *testing.B) {
	seed, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		b.Fatal(err)
	}
	h := ingest.NewHandler(acceptFunc(func(ev store.Event, dests []string, _ store.Dedupe) (store.AcceptResult, error) {
		return store.AcceptResult{EventID: "evt_01J9Z3K4N5P6Q7R8S9T0VWXYZA", Deliveries: len(dests)}, nil
	}), ingest.Settings{
		Router:         route.New([]config.Route{{WebhookID: "1001", To: []string{"crm", "archive"}}}),
		MaxBodyBytes:   1 << 20,
		ResponseStatus: http.StatusAccepted,
		DedupeFields:   []string{"mid"},
		DedupeTTL:      24 * time.Hour,
	}, nil)
	h.OnAccepted = func([]string) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(seed)))
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/hooks/1001", bytes.NewReader(seed))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(seed))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("request %s: %d %s", strconv.Itoa(i), rec.Code, rec.Body)
		}
	}
}
