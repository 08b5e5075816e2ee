package relay_test

import (
	"testing"
	"time"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/admin"
)

// Options.Clock is the time of every part that records one: ingest's
// received_at, the store's delivery times and delivery's attempt log all
// read the fake, which stands still years from the wall clock (an
// attempt's time is its start, its duration before the fake's now).
func TestOptionsClockReachesEveryPart(t *testing.T) {
	crm := newSink(t)
	at := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	r := startFile(t, oneRoute, crm, nil, relay.Options{Clock: clock.NewFake(at)})
	code, ans := post(t, r.Ingest+"/hooks/1001", "application/json", seedBody(t))
	if code != 202 {
		t.Fatalf("POST: %d %+v", code, ans)
	}
	crm.waitFor(t, 1)
	var ev admin.EventView
	eventually(t, "the delivery is recorded as delivered", func() bool {
		r.call(t, "GET", "/api/events/"+ans.EventID, 200, &ev)
		return len(ev.Deliveries) == 1 && len(ev.Deliveries[0].AttemptLog) == 1
	})
	d := ev.Deliveries[0]
	for name, got := range map[string]time.Time{
		"received_at": ev.ReceivedAt, "created_at": d.CreatedAt, "updated_at": d.UpdatedAt, "attempt at": d.AttemptLog[0].At,
	} {
		if d := got.Sub(at); d < -time.Minute || d > 0 {
			t.Errorf("%s = %v, want the fake clock's %v", name, got, at)
		}
	}
}
