package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/store"
)

// heldStore holds every Accept while held is open, as a store whose writes
// have backed up would, and lets everything else through.
type heldStore struct {
	store.Store
	held chan struct{} // closed: writes go through
}

func (h *heldStore) Accept(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
	select {
	case <-h.held:
	case <-ctx.Done():
		return store.AcceptResult{}, ctx.Err()
	}
	return h.Store.Accept(ctx, ev, dests, dd)
}

// TestDeliveryYieldsWhileIngestWaits: with more callbacks waiting for
// their store write than ingestBackedUpAt, the relay's dispatchers hold
// their next Lease (relay_delivery_yield_seconds_total grows); once the
// writes go through, every callback is answered and delivered.
func TestDeliveryYieldsWhileIngestWaits(t *testing.T) {
	sk := newSink(t)
	held := &heldStore{held: make(chan struct{})}
	// A write timeout no busy machine reaches: the callbacks must wait
	// for the store, not be answered 503.
	cfg, err := config.Load([]byte(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
store: {embedded: {path: '`+t.TempDir()+`'}, write_timeout: 1m}
delivery: {poll_interval: 50ms}
routes: [{webhook_id: "1001", to: [crm]}]
destinations: [{name: crm, url: "`+sk.URL+`"}]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Relay: relaytest.Start(t, cfg, relay.Options{WrapStore: func(st store.Store) store.Store {
		held.Store = st
		return held
	}})}
	// Registered after Start's cleanup, so it runs first: a failed test
	// does not leave the relay's shutdown waiting for held writes.
	release := sync.OnceFunc(func() { close(held.held) })
	t.Cleanup(release)
	const yielded = `relay_delivery_yield_seconds_total{destination=crm}`
	if got := r.metrics(t)[yielded]; got != 0 {
		t.Fatalf("%s = %v before any callback, want 0", yielded, got)
	}
	const n = 12 // more than ingestBackedUpAt (8)
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"mid":"m-yield-%d"}`, i)
			resp, err := http.Post(r.Ingest+"/hooks/1001", "application/json", strings.NewReader(body))
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	eventually(t, "delivery yields while callbacks wait for the store", func() bool {
		return r.metrics(t)[yielded] > 0
	})
	release()
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusAccepted {
			t.Errorf("a callback was answered %d, want 202", st)
		}
	}
	sk.waitFor(t, n)
}
