package deliver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	redisstore "github.com/relaygw/relay/relay/store/redis"
)

// Two relays share one Redis. The first dies mid-attempt: its store
// connection is gone, so its heartbeat stops and nothing is released. The
// second takes the delivery over once Options.Lease has passed, although
// the destination's timeout is an hour (the lease used to be timeout +
// lease_margin).
func TestTakeoverAfterLease(t *testing.T) {
	srv := testredis.Start(t)
	open := func() *redisstore.Store {
		t.Helper()
		st, err := redisstore.Open(context.Background(), redisstore.Options{URL: srv.URL(), Prefix: "takeover:"})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	first, second := open(), open()

	var requests atomic.Int32
	gone := make(chan struct{})
	sk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			// The dying relay's attempt never ends by itself.
			select {
			case <-r.Context().Done():
			case <-gone:
			}
		}
	}))
	t.Cleanup(sk.Close)
	t.Cleanup(func() { close(gone) })
	d := dest("crm", sk.URL)
	d.Timeout = config.Duration(time.Hour)
	d.Concurrency = 1
	id := accept(t, second, store.Event{Body: []byte(`{"mid":"t-1"}`)}, "crm")

	opts := testOptions()
	opts.Lease = time.Second
	startManager(t, first, []config.Destination{d}, opts)
	waitFor(t, "the first relay's attempt", func() bool { return requests.Load() == 1 })
	first.Close() // the first relay is gone: no heartbeat, no release

	startManager(t, second, []config.Destination{d}, opts)
	rec := waitState(t, second, id, "crm", store.StateDelivered)
	if requests.Load() != 2 {
		t.Errorf("%d requests, want 2 (the dead relay's and the takeover)", requests.Load())
	}
	if rec.Attempts != 1 {
		t.Errorf("%d attempts recorded, want 1 (the dead relay recorded none)", rec.Attempts)
	}
}
