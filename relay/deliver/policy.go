package deliver

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
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

// DefaultCheckRetry is the retryablehttp.CheckRetry that decide asks about
// each failed attempt, direct or an agent's. It retries what a later
// attempt can plausibly fix: transport errors and timeouts, 3xx (redirects
// are not followed, so the operator must fix the URL, but the delivery
// waits for that), 5xx, and the 4xx statuses that mean "not now" (408,
// 409, 425, 429). Other 4xx are final: the receiver refused this request
// and will refuse it again. A success status never reaches it.
//
// Transport errors go to retryablehttp.ErrorPropagatedRetryPolicy, which
// makes final what no retry can fix: a certificate the client does not
// trust, a bad scheme, an invalid header. It differs from the library's
// policies in three ways. Statuses: they retry only 429 and 5xx but 501,
// while a webhook's receiver may answer 3xx, 408, 409, 425 or 501 for a
// while and then recover. Errors: they look at a *url.Error only when it
// is the error itself, and Relay's errors wrap it (transportError,
// timeoutError), so the *url.Error is found first; a refused redirect,
// Relay's own, is final. Context: they never retry once ctx has ended, and
// an attempt's context ending is a timeout, which is retried, so the caller
// passes a context that outlives the attempt.
func DefaultCheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err == nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return retryableStatus(status), nil
	}
	if errors.Is(err, ErrRedirectRefused) {
		return false, err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return retryablehttp.ErrorPropagatedRetryPolicy(ctx, nil, ue)
	}
	return true, nil
}

// retryable asks CheckRetry about a failed attempt. The context is not the
// attempt's, which has ended when the attempt timed out, and a timeout is
// retried. The error is not used: the attempt's own failure says what went
// wrong.
func (o *Options) retryable(resp *http.Response, err error) bool {
	retry, _ := o.CheckRetry(context.Background(), resp, err)
	return retry
}

// retryableStatus is DefaultCheckRetry for a response that is not a
// success: every status but the 4xx that say the request itself is wrong.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status < 400 || status >= 500
}

// DefaultBackoff waits a random time between min and retryablehttp's
// DefaultBackoff, min*2^attemptNum capped at max ("full jitter", so that
// deliveries that failed together do not retry together); attemptNum is 0
// after the first attempt, as in retryablehttp. A Retry-After header wins
// when it asks for longer (retryAfter).
//
// The library's own DefaultBackoff has no jitter, and takes Retry-After
// only from a 429 or 503, only as seconds or an RFC 1123 date, and even when
// it is shorter than the backoff: Relay has always honoured it on any
// status, in every HTTP-date form, and only to wait longer.
func DefaultBackoff(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
	wait := jitter(min, retryablehttp.DefaultBackoff(min, max, attemptNum, nil))
	return retryAfter(wait, resp, time.Now())
}

// scheduleBackoff is the Backoff of an explicit retry.schedule: entry n+1
// after attempt n+1 failed (attemptNum n), its last entry once attempts
// outrun it, and a longer Retry-After as for DefaultBackoff. min and max are
// not used.
func scheduleBackoff(schedule []time.Duration) retryablehttp.Backoff {
	return func(_, _ time.Duration, attemptNum int, resp *http.Response) time.Duration {
		return retryAfter(schedule[min(attemptNum, len(schedule)-1)], resp, time.Now())
	}
}

// jitter returns a uniformly random duration in [lo, hi].
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}

// retryAfter is wait, or the wait resp's Retry-After asks for at now when
// that is longer. A Backoff is not given the time, so an HTTP-date is read
// against the real clock, as retryablehttp's own backoffs read it.
func retryAfter(wait time.Duration, resp *http.Response, now time.Time) time.Duration {
	if resp == nil {
		return wait
	}
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok && ra > wait {
		return ra
	}
	return wait
}

// parseRetryAfter reads a Retry-After value: delta-seconds or an HTTP-date
// in any of the three forms RFC 9110 section 5.6.7 allows (retryablehttp's
// parser takes RFC 1123 only, keeps no whitespace, and overflows on a huge
// delay). A date in the past means "now" (0, true).
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
