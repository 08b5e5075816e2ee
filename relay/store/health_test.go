package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// WriteHealth follows the last write, probes only once the store has been
// idle for ProbeIdle after a refusal, and counts refused writes per caller.
func TestWriteHealth(t *testing.T) {
	refused := errors.New("no space left on device")
	tests := []struct {
		name      string
		steps     func(h *store.WriteHealth, clock *time.Time)
		probe     error // what the probe write returns
		wantErr   bool
		wantProbe bool
		wantCount int64
	}{
		{"no writes yet", func(*store.WriteHealth, *time.Time) {}, nil, false, false, 0},
		{"last write succeeded", func(h *store.WriteHealth, _ *time.Time) {
			h.Record(refused, 3)
			h.Record(nil, 1)
		}, refused, false, false, 3},
		{"refused just now: no probe, not writable", func(h *store.WriteHealth, _ *time.Time) {
			h.Record(refused, 2)
		}, nil, true, false, 2},
		{"refused, then idle: the probe succeeds", func(h *store.WriteHealth, c *time.Time) {
			h.Record(refused, 1)
			*c = c.Add(store.ProbeIdle)
		}, nil, false, true, 1},
		{"refused, then idle: the probe is refused too", func(h *store.WriteHealth, c *time.Time) {
			h.Record(refused, 1)
			*c = c.Add(store.ProbeIdle)
		}, refused, true, true, 1},
		{"the caller's own cancellation is not a refusal", func(h *store.WriteHealth, _ *time.Time) {
			h.Record(context.Canceled, 1)
		}, nil, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Unix(1_700_000_000, 0)
			h := &store.WriteHealth{Now: func() time.Time { return clock }}
			tt.steps(h, &clock)
			probed := false
			err := h.Check(context.Background(), func(context.Context) error {
				probed = true
				return tt.probe
			})
			if (err != nil) != tt.wantErr || probed != tt.wantProbe {
				t.Errorf("Check = %v, probed %v; want error %v, probed %v", err, probed, tt.wantErr, tt.wantProbe)
			}
			if got := h.Errors(); got != tt.wantCount {
				t.Errorf("Errors = %d, want %d", got, tt.wantCount)
			}
		})
	}
}
