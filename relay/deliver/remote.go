package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// This file exports what an attempt made elsewhere (by a relay agent behind
// the receiver's firewall) needs: Sender makes the HTTP request, with the
// same code as a worker, and Result carries what it produced back to the
// relay, whose Pipeline settles it.

// Result is what one attempt produced, in a form that can cross a wire.
type Result struct {
	// Status is the response status, 0 when no response arrived.
	Status int
	// Header holds the response headers; only Retry-After affects policy.
	Header http.Header
	// Err is set when no response arrived (transport error, timeout), or
	// when the delivery was not attempted (Pipeline.Assign's error).
	Err error
	// Final, with a transport error in Err, is the verdict of whoever made
	// the attempt that no retry can fix it (a certificate it does not
	// trust): the error's type did not survive the trip, so the relay
	// takes the verdict as it is.
	Final bool
	// Location is the redacted Location of a 3xx response.
	Location string
	// NotFollowed says why a 3xx was not followed although following was
	// on (" (not followed: it changes the scheme)"); it ends the failure's
	// text.
	NotFollowed string
	// Response is the start of the response body, truncated.
	Response string
	// Took is how long the attempt ran.
	Took time.Duration
}

// internal is r as a Pipeline judges it: a transport error someone else
// reported carries their verdict (Final), which the retry policy takes.
func (r Result) internal() result {
	err := r.Err
	if err != nil && receiverAnswered(err) {
		err = &reportedError{err: err, final: r.Final}
	}
	return result{status: r.Status, header: r.Header, err: err, location: r.Location, why: r.NotFollowed, response: r.Response, took: r.Took}
}

func (r result) exported() Result {
	return Result{Status: r.status, Header: r.header, Err: r.err, Location: r.location, NotFollowed: r.why, Response: r.response, Took: r.took}
}

// reportedError is a transport error reported by whoever made the attempt,
// with their verdict on whether a retry could fix it.
type reportedError struct {
	err   error
	final bool
}

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// trustReported makes check take the reported verdict of a reportedError
// and ask check about everything else.
func trustReported(check retryablehttp.CheckRetry) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		var re *reportedError
		if errors.As(err, &re) {
			return !re.final, nil
		}
		return check(ctx, resp, err)
	}
}

// Sender makes single POST attempts the way a worker does: retries off,
// redirects followed only when asked (with the same cap, scheme rule and
// dropping of credentials on a change of host, the same refusal of
// addresses a redirect must not lead to), the response read to a cap
// and kept truncated, errors free of the URL. It is safe for concurrent use.
type Sender struct {
	client  *retryablehttp.Client
	hops    *redirector
	timeout time.Duration
}

// NewSender returns a Sender whose attempts time out after timeout and whose
// connection pool is sized for conc concurrent attempts. conf verifies the
// receivers' certificates; nil means Go's defaults (TLS.Config builds it).
func NewSender(timeout time.Duration, conc int, conf *tls.Config) *Sender {
	// An agent listens on nothing: its hops are refused non-public
	// addresses only, and only when the destination is on a public one.
	return &Sender{client: newClient(timeout, conc, conf), hops: newRedirector(timeout, conc, conf, newDialGuard(nil)), timeout: timeout}
}

// Send POSTs body to rawURL with header (and host as the Host header when
// not ""), following redirects as follow_redirects does when follow is set.
// ctx cancels the attempt.
func (s *Sender) Send(ctx context.Context, rawURL, host string, header http.Header, body []byte, follow bool) Result {
	u, err := url.Parse(rawURL)
	if err != nil {
		return result{err: fmt.Errorf("build request: %s", sanitize(err))}.exported()
	}
	return post(ctx, s.client, s.hops, s.timeout, u, host, header, body, follow).exported()
}

// Close drops the Sender's idle connections.
func (s *Sender) Close() {
	s.client.HTTPClient.CloseIdleConnections()
	s.hops.closeIdle()
}
