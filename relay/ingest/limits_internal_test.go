package ingest

import (
	"strconv"
	"testing"
	"time"
)

// TestKeyedLimiterBounded checks that a flood from more sources than
// maxKeyed does not grow the map past it, and that a source it still
// remembers keeps its spent bucket.
func TestKeyedLimiterBounded(t *testing.T) {
	now := time.Unix(1700000000, 0)
	k := newKeyedLimiter(1, 1)
	if !k.allow("busy", now) || k.allow("busy", now) {
		t.Fatal("busy source: first call refused or second allowed")
	}
	for i := range maxKeyed - 1 {
		k.allow("10.0."+strconv.Itoa(i), now)
	}
	// Full, nothing idle yet: the next source evicts at random, but
	// "busy" must still be refused if it survives.
	if _, kept := k.m["busy"]; kept && k.allow("busy", now) {
		t.Fatal("busy source allowed again within its second")
	}
	for i := range maxKeyed * 3 {
		k.allow("10.1."+strconv.Itoa(i), now.Add(2*time.Second))
		if n := k.len(); n > maxKeyed {
			t.Fatalf("after %d sources the limiter holds %d, more than %d", i+1, n, maxKeyed)
		}
	}
	// Idle entries (refilled) are the ones dropped: a new batch far in
	// the future replaces the old sources rather than piling up.
	later := now.Add(time.Hour)
	for i := range maxKeyed {
		k.allow("192.0."+strconv.Itoa(i), later)
	}
	if n := k.len(); n > maxKeyed {
		t.Fatalf("limiter holds %d", n)
	}
}

func TestRetryAfter(t *testing.T) {
	for rate, want := range map[float64]string{0.1: "10", 0.5: "2", 1: "1", 50: "1"} {
		if got := retryAfter(rate); got != want {
			t.Errorf("retryAfter(%g) = %q, want %q", rate, got, want)
		}
	}
}
