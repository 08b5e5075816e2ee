package quietlog_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/quietlog"
)

// clock is a hand-driven clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func lines(b *bytes.Buffer) []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }
func logger(b *bytes.Buffer, c *clock) *slog.Logger {
	h := slog.NewTextHandler(b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(quietlog.New(h, quietlog.Options{Interval: 25 * time.Second, Now: c.now}))
}

func TestRepeatedErrorsAreSummarised(t *testing.T) {
	full := errors.New("write relay.db: no space left on device")
	down := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	tests := []struct {
		name string
		run  func(log *slog.Logger, c *clock)
		want []string
	}{
		{"one line for a burst, then a summary with the next one after the interval",
			func(log *slog.Logger, c *clock) {
				for i := range 15130 {
					log.Error("ingest: store refused event", "webhook_id", i, "err", full)
					c.add(time.Millisecond)
				}
				c.add(25 * time.Second)
				log.Error("ingest: store refused event", "webhook_id", "last", "err", full)
			},
			[]string{
				`level=ERROR msg="ingest: store refused event" webhook_id=0 err="write relay.db: no space left on device"`,
				`level=ERROR msg="ingest: store refused event (repeated 15129 times in 40s)" webhook_id=last err="write relay.db: no space left on device" repeated=15129`,
			}},
		{"different causes and different messages are logged each",
			func(log *slog.Logger, c *clock) {
				log.Error("ingest: store refused event", "err", full)
				log.Error("ingest: store refused event", "err", down)
				log.Warn("deliver: recording outcome failed; retrying", "store_error", down)
				log.Error("ingest: store refused event", "err", down)
			},
			[]string{
				`level=ERROR msg="ingest: store refused event" err="write relay.db: no space left on device"`,
				`level=ERROR msg="ingest: store refused event" err="dial tcp 127.0.0.1:6379: connect: connection refused"`,
				`level=WARN msg="deliver: recording outcome failed; retrying" store_error="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			}},
		{"a count left when the error stops is logged by the next line after the interval",
			func(log *slog.Logger, c *clock) {
				for range 3 {
					log.Error("ingest: store refused event", "err", full)
				}
				c.add(time.Second)
				log.Info("deliver: store answers again")
				c.add(30 * time.Second)
				log.Info("relay: config reloaded")
			},
			[]string{
				`level=ERROR msg="ingest: store refused event" err="write relay.db: no space left on device"`,
				`level=INFO msg="deliver: store answers again"`,
				`level=INFO msg="relay: config reloaded"`,
				`level=ERROR msg="ingest: store refused event (repeated 2 times in 0s)" err="write relay.db: no space left on device" repeated=2`,
			}},
		{"info lines and errors without a cause pass through",
			func(log *slog.Logger, c *clock) {
				for range 2 {
					log.Info("ingest: parked unmatched event", "err", full)
					log.Error("relay: serve failed")
				}
			},
			[]string{
				`level=INFO msg="ingest: parked unmatched event" err="write relay.db: no space left on device"`,
				`level=ERROR msg="relay: serve failed"`,
				`level=INFO msg="ingest: parked unmatched event" err="write relay.db: no space left on device"`,
				`level=ERROR msg="relay: serve failed"`,
			}},
		{"attributes added with With do not split an error",
			func(log *slog.Logger, c *clock) {
				for i := range 3 {
					log.With("delivery", i).Warn("deliver: release failed", "store_error", down)
				}
			},
			[]string{
				`level=WARN msg="deliver: release failed" delivery=0 store_error="dial tcp 127.0.0.1:6379: connect: connection refused"`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			c := newClock()
			tt.run(logger(&b, c), c)
			got := lines(&b)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
