package deliver

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Sun, 01 Mar 2026 12:05:00 GMT", 5 * time.Minute, true},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:00:10 2026", 10 * time.Second, true},       // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},     // past: now
		{"99999999999999999999", 0, false},
		{"9999999999", 100 * 365 * 24 * time.Hour, true}, // capped, no overflow
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDefaultBackoffBounds(t *testing.T) {
	initial, maxI := 10*time.Millisecond, time.Second
	tests := []struct {
		attempt int
		hi      time.Duration
	}{
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{3, 40 * time.Millisecond},
		{7, 640 * time.Millisecond},
		{8, time.Second},
		{64, time.Second},
		{1 << 20, time.Second},
	}
	for _, tt := range tests {
		if c := ceiling(initial, maxI, tt.attempt); c != tt.hi {
			t.Errorf("ceiling(attempt %d) = %v, want %v", tt.attempt, c, tt.hi)
		}
		seenSpread := false
		for range 200 {
			got := DefaultBackoff(initial, maxI, tt.attempt, nil)
			if got < initial || got > tt.hi {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", tt.attempt, got, initial, tt.hi)
			}
			if got != initial && got != tt.hi {
				seenSpread = true
			}
		}
		if tt.hi > initial && !seenSpread {
			t.Errorf("attempt %d: 200 draws all at the bounds; no jitter", tt.attempt)
		}
	}
}

func TestDefaultBackoffRetryAfter(t *testing.T) {
	resp := func(v string) *http.Response {
		return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {v}}}
	}
	tests := []struct {
		name   string
		resp   *http.Response
		lo, hi time.Duration
	}{
		{"longer Retry-After wins", resp("30"), 30 * time.Second, 30 * time.Second},
		{"shorter Retry-After loses", resp("0"), time.Second, 2 * time.Second},
		{"garbage is ignored", resp("later"), time.Second, 2 * time.Second},
		{"date in the future", resp(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), 58 * time.Minute, time.Hour},
		{"no response", nil, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultBackoff(time.Second, time.Minute, 2, tt.resp)
			if got < tt.lo || got > tt.hi {
				t.Fatalf("backoff = %v, want in [%v, %v]", got, tt.lo, tt.hi)
			}
		})
	}
}

func TestDefaultCheckRetry(t *testing.T) {
	retryable := []int{300, 301, 302, 307, 308, 408, 409, 425, 429, 500, 502, 503, 504, 599, 100, 204}
	final := []int{400, 401, 403, 404, 405, 410, 413, 415, 422}
	for _, s := range retryable {
		if !DefaultCheckRetry(s, nil) {
			t.Errorf("status %d: not retried, want retried", s)
		}
	}
	for _, s := range final {
		if DefaultCheckRetry(s, nil) {
			t.Errorf("status %d: retried, want final", s)
		}
	}
	errs := []struct {
		err  error
		want bool
	}{
		{&url.Error{Op: "Post", URL: "http://x", Err: errors.New("connection refused")}, true},
		{transportError{&url.Error{Op: "Post", URL: "https://x", Err: x509.UnknownAuthorityError{}}}, false},
		{&url.Error{Op: "Post", URL: "ftp://x", Err: errors.New(`unsupported protocol scheme "ftp"`)}, false},
		{fmt.Errorf("read: %w", errors.New("EOF")), true},
	}
	for _, e := range errs {
		if got := DefaultCheckRetry(0, e.err); got != e.want {
			t.Errorf("err %v: retry = %v, want %v", e.err, got, e.want)
		}
	}
}

// TestDecide runs the destination policy on attempt results: which outcome,
// and why a failure is final.
func TestDecide(t *testing.T) {
	created := time.Now()
	base := dest("d", "http://127.0.0.1:1/")
	base.Retry.MaxAttempts = 3
	base.Retry.MaxAge = config.Duration(time.Minute)
	only202 := base
	only202.SuccessStatus = []int{202, 404}
	tests := []struct {
		name     string
		d        config.Destination
		attempts int // made before this one
		created  time.Time
		res      result
		want     Outcome
		why      string
	}{
		{"2xx is success by default", base, 0, created, result{status: 204}, OutcomeSuccess, ""},
		{"listed status is success", only202, 0, created, result{status: 404}, OutcomeSuccess, ""},
		{"unlisted 2xx fails when listed", only202, 0, created, result{status: 200}, OutcomeRetry, ""},
		{"503 retried", base, 0, created, result{status: 503}, OutcomeRetry, ""},
		{"400 final", base, 0, created, result{status: 400}, OutcomeDead, "not retryable"},
		{"429 retried", base, 1, created, result{status: 429}, OutcomeRetry, ""},
		{"last attempt", base, 2, created, result{status: 503}, OutcomeDead, "max_attempts (3)"},
		{"transport error", base, 0, created, result{err: errors.New("connection reset")}, OutcomeRetry, ""},
		{"next due past max_age", base, 0, created.Add(-time.Minute + time.Millisecond), result{status: 500}, OutcomeDead, "max_age"},
		{"Retry-After past max_age", base, 0, created, result{status: 429, header: http.Header{"Retry-After": {"3600"}}}, OutcomeDead, "max_age"},
		{"missing event", base, 0, created, result{err: ErrNoEvent}, OutcomeDead, "not retryable"},
	}
	opts := testOptions().withDefaults()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProfile(tt.d, &opts)
			if err != nil {
				t.Fatal(err)
			}
			d := store.Delivery{Attempts: tt.attempts, CreatedAt: tt.created}
			now := time.Now()
			got, due, why := p.decide(&opts, d, tt.res, now)
			if got != tt.want || !strings.Contains(why, tt.why) || (tt.why == "") != (why == "") {
				t.Fatalf("decide = %s, %q; want %s, %q", got, why, tt.want, tt.why)
			}
			if got == OutcomeRetry && (due.Before(now.Add(10*time.Millisecond)) || due.After(now.Add(20*time.Millisecond))) {
				t.Fatalf("due in %v, want within the backoff bounds [10ms, 20ms]", due.Sub(now))
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"},  // é is 2 bytes; half of it is dropped
		{"héllo", 3, "hé"}, // whole rune kept
		{"a\xffb", 10, "a\uFFFDb"},
		{"€", 2, ""},
		{"", 0, ""},
	}
	for _, tt := range tests {
		if got := truncate([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	long := strings.Repeat("x", maxKeyHeader+1)
	tests := []struct{ in, want string }{
		{"1234-1333-XXXXX", "1234-1333-XXXXX"},
		{"evt_01JD3Y", "evt_01JD3Y"},
		{"100%", "100%"}, // printable: left alone
		{"a b", "a%20b"},
		{"line\nbreak%", "line%0Abreak%25"},
		{"caf\u00e9", "caf%C3%A9"},
		{long, "sha256-" + fmt.Sprintf("%x", sha256.Sum256([]byte(long)))},
	}
	for _, tt := range tests {
		if got := headerSafe(tt.in); got != tt.want {
			t.Errorf("headerSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRetrySchedule covers retry.schedule: entry n is the wait after failed
// attempt n, the last entry repeats, Retry-After wins only when longer, and
// max_attempts defaults to the schedule's length plus one.
func TestRetrySchedule(t *testing.T) {
	svix := []config.Duration{0, config.Duration(5 * time.Second), config.Duration(5 * time.Minute), config.Duration(30 * time.Minute),
		config.Duration(2 * time.Hour), config.Duration(5 * time.Hour), config.Duration(10 * time.Hour), config.Duration(10 * time.Hour)}
	d := dest("d", "http://127.0.0.1:1/")
	d.Retry = config.Retry{Schedule: svix, MaxAge: config.Duration(100 * time.Hour)}
	opts := testOptions().withDefaults()
	p, err := newProfile(d, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.set.maxAttempts != 9 {
		t.Fatalf("max attempts = %d, want len(schedule)+1 = 9", p.set.maxAttempts)
	}
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name     string
		attempts int // made before this one
		res      result
		want     Outcome
		wait     time.Duration
	}{
		{"first failure: entry 1 (0s)", 0, result{status: 500}, OutcomeRetry, 0},
		{"second failure: entry 2", 1, result{status: 500}, OutcomeRetry, 5 * time.Second},
		{"fourth failure: entry 4", 3, result{err: errors.New("connection reset")}, OutcomeRetry, 30 * time.Minute},
		{"eighth failure: entry 8", 7, result{status: 503}, OutcomeRetry, 10 * time.Hour},
		{"ninth failure: max_attempts", 8, result{status: 503}, OutcomeDead, 0},
		{"longer Retry-After wins", 1, result{status: 429, header: retryAfter("60")}, OutcomeRetry, time.Minute},
		{"shorter Retry-After loses", 2, result{status: 429, header: retryAfter("60")}, OutcomeRetry, 5 * time.Minute},
	}
	now := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, due, _ := p.decide(&opts, store.Delivery{Attempts: tt.attempts, CreatedAt: now}, tt.res, now)
			if got != tt.want {
				t.Fatalf("outcome %s, want %s", got, tt.want)
			}
			if got == OutcomeRetry && due.Sub(now) != tt.wait {
				t.Fatalf("due in %v, want exactly %v (no jitter)", due.Sub(now), tt.wait)
			}
		})
	}

	// With more attempts than entries, the last entry repeats.
	d.Retry = config.Retry{Schedule: svix[:2], MaxAttempts: 6, MaxAge: config.Duration(time.Hour)}
	if p, err = newProfile(d, &opts); err != nil {
		t.Fatal(err)
	}
	if _, due, _ := p.decide(&opts, store.Delivery{Attempts: 4, CreatedAt: now}, result{status: 500}, now); due.Sub(now) != 5*time.Second {
		t.Fatalf("attempt 5 beyond the schedule: due in %v, want the last entry, 5s", due.Sub(now))
	}
}

// A failed status names success_status, so a 204 refused by a list that
// leaves it out says why instead of looking like a receiver's fault.
func TestFailureNamesSuccessStatus(t *testing.T) {
	listed := dest("d", "http://127.0.0.1:1/")
	listed.SuccessStatus = []int{200, 202}
	tests := []struct {
		name string
		d    config.Destination
		res  result
		want string
	}{
		{"listed", listed, result{status: 204}, "deliver: unsuccessful status 204, not in success_status [200 202]"},
		{"default", dest("d", "http://127.0.0.1:1/"), result{status: 410}, "deliver: unsuccessful status 410, not in success_status (any 2xx); not retryable"},
	}
	opts := testOptions().withDefaults()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProfile(tt.d, &opts)
			if err != nil {
				t.Fatal(err)
			}
			d := store.Delivery{CreatedAt: time.Now()}
			_, a, _ := p.attemptRecord(&opts, d, tt.res, time.Now())
			if a.Error != tt.want {
				t.Errorf("attempt error %q, want %q", a.Error, tt.want)
			}
		})
	}
}
