package deliver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"

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

// TestDefaultBackoffBounds: the wait after attemptNum is drawn from
// [initial, min(max, initial*2^attemptNum)], spread over all of it.
func TestDefaultBackoffBounds(t *testing.T) {
	initial, maxI := 10*time.Millisecond, time.Second
	tests := []struct {
		attemptNum int // 0 after the first attempt
		hi         time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 20 * time.Millisecond},
		{2, 40 * time.Millisecond},
		{6, 640 * time.Millisecond},
		{7, time.Second},
		{63, time.Second},
		{1 << 20, time.Second},
	}
	for _, tt := range tests {
		seenSpread, top := false, time.Duration(0)
		for range 200 {
			got := DefaultBackoff(initial, maxI, tt.attemptNum, nil)
			if got < initial || got > tt.hi {
				t.Fatalf("attemptNum %d: backoff %v outside [%v, %v]", tt.attemptNum, got, initial, tt.hi)
			}
			if got != initial && got != tt.hi {
				seenSpread = true
			}
			top = max(top, got)
		}
		if tt.hi > initial && !seenSpread {
			t.Errorf("attemptNum %d: 200 draws all at the bounds; no jitter", tt.attemptNum)
		}
		// 200 uniform draws all in the lowest three quarters: 1 in 10^25.
		if top < initial+(tt.hi-initial)*3/4 {
			t.Errorf("attemptNum %d: the longest of 200 waits is %v; want draws up to %v", tt.attemptNum, top, tt.hi)
		}
	}
}

// TestDefaultBackoffRetryAfter: a Retry-After on any status, in seconds or
// an HTTP-date, wins when it asks for longer than the backoff.
func TestDefaultBackoffRetryAfter(t *testing.T) {
	resp := func(status int, v string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {v}}}
	}
	tests := []struct {
		name   string
		resp   *http.Response
		lo, hi time.Duration
	}{
		{"longer Retry-After wins", resp(429, "30"), 30 * time.Second, 30 * time.Second},
		{"on a 500 too", resp(500, "30"), 30 * time.Second, 30 * time.Second},
		{"on a 301 too", resp(301, " 30 "), 30 * time.Second, 30 * time.Second},
		{"shorter Retry-After loses", resp(503, "0"), time.Second, 2 * time.Second},
		{"garbage is ignored", resp(429, "later"), time.Second, 2 * time.Second},
		{"date in the future", resp(429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), 58 * time.Minute, time.Hour},
		{"RFC 850 date", resp(503, time.Now().Add(time.Hour).UTC().Format("Monday, 02-Jan-06 15:04:05 GMT")), 58 * time.Minute, time.Hour},
		{"no response", nil, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultBackoff(time.Second, time.Minute, 1, tt.resp)
			if got < tt.lo || got > tt.hi {
				t.Fatalf("backoff = %v, want in [%v, %v]", got, tt.lo, tt.hi)
			}
		})
	}
}

// retries asks DefaultCheckRetry about an attempt that got status (err nil)
// or err, as decide asks it.
func retries(status int, err error) bool {
	var resp *http.Response
	if err == nil {
		resp = &http.Response{StatusCode: status}
	}
	retry, _ := DefaultCheckRetry(context.Background(), resp, err)
	return retry
}

func TestDefaultCheckRetry(t *testing.T) {
	// 3xx, 501, 409 and 425 are where Relay retries and retryablehttp's
	// policies do not; 100 and 204 fail only under a success_status list.
	retryable := []int{300, 301, 302, 307, 308, 408, 409, 425, 429, 500, 501, 502, 503, 504, 599, 100, 204}
	final := []int{400, 401, 403, 404, 405, 410, 413, 415, 422}
	for _, s := range retryable {
		if !retries(s, nil) {
			t.Errorf("status %d: not retried, want retried", s)
		}
	}
	for _, s := range final {
		if retries(s, nil) {
			t.Errorf("status %d: retried, want final", s)
		}
	}
	postErr := func(u string, err error) error { return &url.Error{Op: "Post", URL: u, Err: err} }
	untrusted := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	errs := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", postErr("http://x", errors.New("connection refused")), true},
		{"untrusted certificate", transportError{postErr("https://x", untrusted)}, false},
		{"bad scheme", postErr("ftp://x", errors.New(`unsupported protocol scheme "ftp"`)), false},
		{"invalid header", transportError{postErr("http://x", errors.New(`net/http: invalid header field value for "X"`))}, false},
		{"timeout", transportError{timeoutError{after: time.Second, err: postErr("http://x", context.DeadlineExceeded)}}, true},
		{"refused redirect", fmt.Errorf("%w: status 307 to http://x: private address", ErrRedirectRefused), false},
		{"EOF", fmt.Errorf("read: %w", errors.New("EOF")), true},
	}
	for _, e := range errs {
		if got := retries(0, e.err); got != e.want {
			t.Errorf("%s (%v): retry = %v, want %v", e.name, e.err, got, e.want)
		}
	}
}

// Options take go-retryablehttp's own policies as they are: with its
// DefaultRetryPolicy a 501 is final, as the library has it.
func TestLibraryPolicyPlugsIn(t *testing.T) {
	opts := testOptions()
	opts.CheckRetry, opts.Backoff = retryablehttp.DefaultRetryPolicy, retryablehttp.LinearJitterBackoff
	opts = opts.withDefaults()
	p, err := newProfile(dest("d", "http://127.0.0.1:1/"), &opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := store.Delivery{Attempts: 1, CreatedAt: now}
	if got, _, why := p.decide(&opts, d, result{status: 501}, now); got != OutcomeDead || why != "not retryable" {
		t.Errorf("501: %s, %q; want dead, not retryable", got, why)
	}
	// Linear: the second wait is twice a draw from [10ms, 20ms].
	got, due, _ := p.decide(&opts, d, result{status: 503}, now)
	if wait := due.Sub(now); got != OutcomeRetry || wait < 20*time.Millisecond || wait > 40*time.Millisecond {
		t.Errorf("503: %s in %v; want a retry in [20ms, 40ms]", got, wait)
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
