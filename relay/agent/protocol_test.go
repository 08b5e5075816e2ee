package agent

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

func TestTicketRoundTrip(t *testing.T) {
	d := store.Delivery{ID: "dlv_01ABC", EventID: "evt_01XYZ", Destination: "office.main-1",
		Attempts: 3, CreatedAt: time.Unix(0, 1700000000123456789), Lease: "LEASETOKEN-7"}
	got, err := decodeTicket(newTicket(d).encode())
	if err != nil {
		t.Fatal(err)
	}
	back := got.delivery()
	if back.ID != d.ID || back.EventID != d.EventID || back.Destination != d.Destination ||
		back.Attempts != d.Attempts || !back.CreatedAt.Equal(d.CreatedAt) || back.Lease != d.Lease ||
		back.State != store.StatePending {
		t.Errorf("round trip: got %+v, want %+v", back, d)
	}
}

func TestDecodeTicketRefuses(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, raw := range []string{
		"",
		"not base64 !",
		enc("dlv_1\nlease\noffice\nevt_1\n0"), // a field short
		enc("dlv_1\nlease\noffice\nevt_1\n0\n1\nextra"), // a field over
		enc("\nlease\noffice\nevt_1\n0\n1"),             // no id
		enc("dlv_1\n\noffice\nevt_1\n0\n1"),             // no lease
		enc("dlv_1\nlease\n\nevt_1\n0\n1"),              // no destination
		enc("dlv_1\nlease\noffice\nevt_1\nthree\n1"),    // attempts not a number
		enc("dlv_1\nlease\noffice\nevt_1\n0\nnow"),      // created not a number
	} {
		if _, err := decodeTicket(raw); !errors.Is(err, ErrBadTicket) {
			t.Errorf("decodeTicket(%q) = %v, want ErrBadTicket", raw, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, 500 * time.Millisecond, time.Second}, // capped
		{1000, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := backoff(100*time.Millisecond, time.Second, tc.attempt); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(attempt %d) = %v, want within [%v, %v]", tc.attempt, d, tc.lo, tc.hi)
			}
		}
	}
}
