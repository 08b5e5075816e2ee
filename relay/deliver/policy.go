package deliver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Outcome is what became of one attempt, as reported to Options.OnAttempt.
type Outcome string

// Attempt outcomes.
const (
	// OutcomeSuccess means a success status arrived; the delivery is done.
	OutcomeSuccess Outcome = "success"
	// OutcomeRetry means the attempt failed and another one was scheduled.
	OutcomeRetry Outcome = "retry"
	// OutcomeDead means the attempt failed and the delivery was dead-lettered,
	// because the failure is final or the retry budget is spent.
	OutcomeDead Outcome = "dead"
)

// CheckRetry decides whether a failed attempt may be tried again. status is 0
// when no response arrived, and err is nil when one did. It is only asked
// about failures: a success status never reaches it.
type CheckRetry func(status int, err error) bool

// Backoff returns how long to wait before attempt+1, after attempt (1-based)
// failed. resp is the failed attempt's response (only StatusCode and Header
// are set), or nil when none arrived.
type Backoff func(initial, max time.Duration, attempt int, resp *http.Response) time.Duration

// DefaultCheckRetry retries what a later attempt can plausibly fix: transport
// errors and timeouts, 3xx (redirects are not followed, so the operator must
// fix the URL, but the delivery waits for that), 5xx, and the 4xx statuses
// that mean "not now" (408, 409, 425, 429). Other 4xx are final: the receiver
// refused this request and will refuse it again. Transport errors that no
// retry can fix (a certificate the client does not trust, a bad scheme) are
// final too.
var DefaultCheckRetry CheckRetry = func(status int, err error) bool {
	if err != nil {
		return !permanentTransportError(err)
	}
	switch {
	case status == http.StatusRequestTimeout,
		status == http.StatusConflict,
		status == http.StatusTooEarly,
		status == http.StatusTooManyRequests:
		return true
	case status >= 400 && status < 500:
		return false
	}
	return true
}

// permanentTransportError reports errors that the same request will hit
// again, whatever the wait: TLS trust failures, malformed requests and
// refused redirects.
func permanentTransportError(err error) bool {
	if errors.Is(err, ErrRedirectRefused) {
		return true
	}
	var (
		unknownCA x509.UnknownAuthorityError
		verify    *tls.CertificateVerificationError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &verify) ||
		errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "unsupported protocol scheme") ||
		strings.Contains(msg, "invalid header")
}

// DefaultBackoff waits a random time between initial and
// min(max, initial*2^(attempt-1)) ("full jitter", so that deliveries that
// failed together do not retry together). A Retry-After header on the
// response (delta-seconds or an HTTP-date) wins when it asks for longer.
var DefaultBackoff Backoff = func(initial, max time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := jitter(initial, ceiling(initial, max, attempt))
	if resp != nil {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && ra > wait {
			wait = ra
		}
	}
	return wait
}

// ceiling is min(max, initial*2^(attempt-1)) without overflowing.
func ceiling(initial, max time.Duration, attempt int) time.Duration {
	if initial <= 0 {
		return 0
	}
	if max < initial {
		max = initial
	}
	c := initial
	for i := 1; i < attempt && c < max; i++ {
		if c > max/2 {
			return max
		}
		c *= 2
	}
	if c > max {
		return max
	}
	return c
}

// jitter returns a uniformly random duration in [lo, hi].
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}

// parseRetryAfter reads a Retry-After value: delta-seconds or an HTTP-date
// (RFC 9110 section 10.2.3). A date in the past means "now" (0, true).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Cap far beyond any max_age so the multiplication cannot overflow.
		const maxSecs = int64(100 * 365 * 24 * 3600)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
