package gctune

import (
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	for _, tc := range []struct {
		gogc string
		want int
	}{
		{"", Percent},
		{"100", 100}, // the operator's GOGC wins
		{"off", 100},
	} {
		debug.SetGCPercent(100)
		restore := Apply(func(k string) string {
			if k == "GOGC" {
				return tc.gogc
			}
			return ""
		})
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: GC percent %d, want %d", tc.gogc, got, tc.want)
		}
		debug.SetGCPercent(tc.want)
		restore()
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("GOGC=%q: restore left GC percent %d, want the 100 before Apply", tc.gogc, got)
		}
	}
}
