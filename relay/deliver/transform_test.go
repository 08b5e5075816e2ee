package deliver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// TestTransformFailureIsFinal: a delivery whose transform fails (a jq error,
// a body jq cannot read) is dead-lettered after one attempt with the reason,
// nothing is sent for it, and the failure does not count against the
// receiver's circuit, so the next delivery goes out signed over its
// transformed body.
func TestTransformFailureIsFinal(t *testing.T) {
	sk := newSink(t, status(http.StatusOK))
	d := dest("crm", sk.URL)
	d.Concurrency = 1
	d.SigningSecret = vectorSecret
	// One failure would open the circuit for an hour, and the good
	// delivery would not arrive in time: the transform's failures must not
	// count.
	d.Circuit = config.Circuit{Failures: 1, Cooldown: config.Duration(time.Hour)}
	d.Transform = &config.Transform{Body: `{n: (.x | tonumber)}`, Headers: map[string]string{"X-Kind": ".kind"}}
	st := newTestStore(t)
	badJQ := accept(t, st, store.Event{ContentType: "application/json", Body: []byte(`{"x":"a",}`)}, "crm")
	text := accept(t, st, store.Event{ContentType: "text/plain", Body: []byte("hello")}, "crm")
	good := accept(t, st, store.Event{ContentType: "application/json", Body: []byte(`{"x":"12345678901234567890123","kind":"call",}`)}, "crm")
	r := startManager(t, st, []config.Destination{d}, testOptions())

	for _, tt := range []struct{ id, want string }{
		{badJQ, `transform: body: jq: tonumber cannot be applied to "a"`},
		{text, "transform: input: body is not JSON or a form (content type text/plain)"},
	} {
		rec := waitState(t, st, tt.id, "crm", store.StateDead)
		if rec.Attempts != 1 || len(rec.AttemptLog) != 1 {
			t.Fatalf("dead after %d attempts (%d logged), want 1", rec.Attempts, len(rec.AttemptLog))
		}
		if e := rec.AttemptLog[0].Error; !strings.Contains(e, tt.want) || !strings.Contains(e, "not retried") || rec.AttemptLog[0].Status != 0 {
			t.Errorf("attempt = %+v, want status 0 and an error with %q, not retried", rec.AttemptLog[0], tt.want)
		}
	}
	waitState(t, st, good, "crm", store.StateDelivered)
	reqs := sk.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want only the good delivery", len(reqs))
	}
	got := reqs[0]
	if string(got.body) != `{"n":12345678901234567890123}` || got.header.Get("Content-Type") != "application/json" || got.header.Get("X-Kind") != "call" {
		t.Errorf("received %s %q X-Kind %q", got.body, got.header.Get("Content-Type"), got.header.Get("X-Kind"))
	}
	if err := verifyWebhook(vectorSecret, got.header, got.body, time.Now()); err != nil {
		t.Errorf("signature over the transformed body: %v", err)
	}
	if s := r.States()[0]; s.Circuit != CircuitClosed || s.ConsecutiveFailures != 0 {
		t.Errorf("circuit %s with %d failures, want closed with none", s.Circuit, s.ConsecutiveFailures)
	}
}
