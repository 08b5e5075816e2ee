package authguard

import (
	"fmt"
	"testing"
	"time"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header string
		tok    string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"bEaReR  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		tok, ok := BearerToken(tt.header)
		if tok != tt.tok || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, tok, ok, tt.tok, tt.ok)
		}
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer x", "Basic y", "", "Bearer  \t x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := BearerToken(header)
		if ok != (tok != "") {
			t.Fatalf("BearerToken(%q) = %q, %v", header, tok, ok)
		}
	})
}

func TestDigestEqual(t *testing.T) {
	d := NewDigest("s3cret-token")
	for tok, want := range map[string]bool{"s3cret-token": true, "s3cret-toke": false, "s3cret-tokenx": false, "": false} {
		if got := d.Equal(tok); got != want {
			t.Errorf("Equal(%q) = %v, want %v", tok, got, want)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestThrottle counts: a source may fail Burst times, is refused after,
// gets one more try each Every, and other sources are not affected. An
// IPv6 source is its /64.
func TestThrottle(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	th := NewThrottle(Options{Burst: 3, Every: 10 * time.Second, MaxSources: 100, Now: clk.now})
	const src = "192.0.2.1:5555"
	for i := range 3 {
		if w := th.Wait(src); w != 0 {
			t.Fatalf("failure %d: refused with wait %v before the burst was used", i+1, w)
		}
		th.Fail(src)
	}
	if w := th.Wait(src); w != 10*time.Second {
		t.Fatalf("after 3 failures: wait %v, want 10s", w)
	}
	if w := th.Wait("192.0.2.1:6666"); w == 0 {
		t.Error("another port of the same address is not refused")
	}
	if w := th.Wait("192.0.2.2:5555"); w != 0 {
		t.Errorf("another address refused with wait %v", w)
	}
	clk.t = clk.t.Add(4 * time.Second)
	if w := th.Wait(src); w != 6*time.Second {
		t.Errorf("4s later: wait %v, want 6s", w)
	}
	clk.t = clk.t.Add(6 * time.Second)
	if w := th.Wait(src); w != 0 {
		t.Fatalf("after Every: wait %v, want one more try", w)
	}
	th.Fail(src)
	if w := th.Wait(src); w == 0 {
		t.Error("the forgiven try used, yet not refused")
	}

	for range 3 {
		th.Fail("[2001:db8:1:2::1]:443")
	}
	if w := th.Wait("[2001:db8:1:2:ffff::9]:1"); w == 0 {
		t.Error("another address of the same IPv6 /64 is not refused")
	}
	if w := th.Wait("[2001:db8:1:3::1]:443"); w != 0 {
		t.Errorf("another /64 refused with wait %v", w)
	}
	if got := RetryAfter(6*time.Second + time.Millisecond); got != 7 {
		t.Errorf("RetryAfter rounds to %d, want 7", got)
	}
}

// TestThrottleBounded: failures from more sources than MaxSources keep the
// map at its bound.
func TestThrottleBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	th := NewThrottle(Options{Burst: 2, Every: time.Minute, MaxSources: 50, Now: clk.now})
	for i := range 1000 {
		th.Fail(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256))
		if n := len(th.sources); n > 50 {
			t.Fatalf("after %d sources: %d remembered, want at most 50", i+1, n)
		}
	}
}
