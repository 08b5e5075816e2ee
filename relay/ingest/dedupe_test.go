package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
)

// TestDedupeFieldsUnambiguous checks that tuples of dedupe values whose
// joined texts would be equal get different claims.
func TestDedupeFieldsUnambiguous(t *testing.T) {
	rec := &recorder{}
	h := ingest.NewHandler(acceptFunc(rec.accept), ingest.Settings{
		Router:         route.New([]config.Route{{WebhookID: "1001", To: []string{"a"}}}),
		MaxBodyBytes:   1 << 20,
		ResponseStatus: http.StatusAccepted,
		DedupeFields:   []string{"call_id", "leg"},
		DedupeTTL:      time.Hour,
	}, nil)
	for _, body := range []string{
		`{"call_id":"abc:1","leg":"2"}`,
		`{"call_id":"abc","leg":"1:2"}`,
		`{"call_id":"abc\",\"1","leg":"2"}`,
		`{"call_id":"abc","leg":"1\",\"2"}`,
	} {
		post(h, "/hooks/1001", body, nil)
	}
	seen := map[string]int{}
	for i, c := range rec.claims {
		if c.Key == "" {
			t.Fatalf("event %d: no claim", i)
		}
		if j, dup := seen[c.Key]; dup {
			t.Errorf("events %d and %d share the claim %q", j, i, c.Key)
		}
		seen[c.Key] = i
	}
	if got := rec.events[0].DedupeKey; got != `["abc:1","2"]` {
		t.Errorf("dedupe value %q, want a JSON array of the values", got)
	}
}

// TestLongDedupeKey checks a 40 KB mid: the claim is hashed to a short
// key, the same for the same mid, while the event keeps the readable value.
func TestLongDedupeKey(t *testing.T) {
	rec := &recorder{}
	h, _ := newHandler(t, acceptFunc(rec.accept))
	mid := strings.Repeat("m", 40<<10)
	for range 2 {
		if got := post(h, "/hooks/1001", `{"mid":"`+mid+`"}`, nil); got.Code != http.StatusAccepted {
			t.Fatalf("status %d", got.Code)
		}
	}
	post(h, "/hooks/1001", `{"mid":"`+mid+`x"}`, nil)
	a, b, c := rec.claims[0].Key, rec.claims[1].Key, rec.claims[2].Key
	if len(a) > 200 || a != b || a == c {
		t.Errorf("claims %d bytes; same mid same claim %v; other mid other claim %v", len(a), a == b, a != c)
	}
	if rec.events[0].DedupeKey != mid {
		t.Errorf("event dedupe value is %d bytes, want the mid", len(rec.events[0].DedupeKey))
	}
	if ingest.ClaimKey("1001", "m-1") != "1001\x1fm-1" {
		t.Errorf("short claim changed: %q", ingest.ClaimKey("1001", "m-1"))
	}
}
