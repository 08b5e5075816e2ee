package deliver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// BenchmarkAttemptTransform is the per-delivery cost of a destination's
// transform next to the untransformed path: prepare is the request's
// headers and body alone (signed), attempt is a whole attempt to a local
// receiver. Run with:
//
//	go test -run '^$' -bench AttemptTransform -benchtime 2s -count 5 ./relay/deliver/
func BenchmarkAttemptTransform(b *testing.B) {
	sk := newBenchSink(b)
	shapes := []struct {
		name string
		tr   *config.Transform
	}{
		{"original", nil},
		{"json", &config.Transform{
			Body:    `{phone: .to, outcome: .status, seconds: (.duration|tonumber)}`,
			Headers: map[string]string{"X-Call-Id": ".mid"},
		}},
		{"form", &config.Transform{Body: `{caller: .from, callee: .to, status, duration}`, Format: "form"}},
	}
	for _, stage := range []string{"prepare", "attempt"} {
		for _, sh := range shapes {
			b.Run(stage+"/"+sh.name, func(b *testing.B) {
				opts := Options{}.withDefaults()
				p, err := newProfile(config.Destination{
					Name: "bench", URL: sk.URL + "/hook", SigningSecret: "whsec_" + strings.Repeat("A", 44),
					Transform: sh.tr,
				}, &opts)
				if err != nil {
					b.Fatal(err)
				}
				ev := &store.Event{ID: "evt_1", WebhookID: "1001", DedupeKey: "1234-1333-00000",
					ContentType: "application/json", Body: benchBody}
				d := store.Delivery{ID: "dlv_1", EventID: ev.ID, Event: ev}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					now := time.Now()
					if stage == "prepare" {
						if _, _, err := p.ep.prepare(ctx, d, now); err != nil {
							b.Fatal(err)
						}
						continue
					}
					res := p.ep.do(ctx, ctx, d, now, now)
					if res.err != nil || res.status != 200 {
						b.Fatalf("attempt: %d %v", res.status, res.err)
					}
				}
			})
		}
	}
}
