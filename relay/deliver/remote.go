package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/relay/store"
)

// This file exports the two halves of one attempt for deliveries made
// elsewhere (by a relay agent behind the receiver's firewall): Remote is the
// relay's half (headers and signature before, policy after), Sender is the
// agent's half (the HTTP request itself). Both call the same code as a local
// worker, so an agent destination follows the same rules as a direct one.

// Result is what one attempt produced, in a form that can cross a wire.
type Result struct {
	// Status is the response status, 0 when no response arrived.
	Status int
	// Header holds the response headers; only Retry-After affects policy.
	Header http.Header
	// Err is set when no response arrived (transport error, timeout).
	Err error
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

func (r Result) internal() result {
	return result{status: r.Status, header: r.Header, err: r.Err, location: r.Location, why: r.NotFollowed, response: r.Response, took: r.Took}
}

func (r result) exported() Result {
	return Result{Status: r.status, Header: r.header, Err: r.err, Location: r.location, NotFollowed: r.why, Response: r.response, Took: r.took}
}

// Remote is a destination compiled for attempts made by someone else. The
// relay builds each attempt's headers (the signing secret never leaves it)
// and classifies the result that comes back with the destination's policy.
type Remote struct {
	p    *profile
	opts *Options
}

// NewRemote compiles d. opts supplies CheckRetry, Backoff and Version;
// the rest is ignored. It fails like NewManager on a bad URL or secret. It
// builds no HTTP client and reads no tls settings: the agent attempts with
// its own (Sender).
func NewRemote(d config.Destination, opts Options) (*Remote, error) {
	o := opts.withDefaults()
	p, err := compile(d, &o)
	if err != nil {
		return nil, err
	}
	return &Remote{p: p, opts: &o}, nil
}

// Header returns every header of d's next attempt, signed at now. d.Event
// must be set.
func (r *Remote) Header(d store.Delivery, now time.Time) http.Header {
	return r.p.ep.headers(d, now)
}

// Prepare returns the headers and body of d's next attempt, signed at now:
// the event's body as it is, or the destination's transform of it. An error
// wraps transform.ErrTransform; given to Outcome as a Result's Err, it
// dead-letters the delivery. d.Event must be set.
func (r *Remote) Prepare(ctx context.Context, d store.Delivery, now time.Time) (http.Header, []byte, error) {
	return r.p.ep.prepare(ctx, d, now)
}

// Host returns the Host header override from the destination's headers, or
// "" for none.
func (r *Remote) Host() string { return r.p.ep.host }

// Timeout returns the destination's per-attempt timeout.
func (r *Remote) Timeout() time.Duration { return r.p.set.timeout }

// Concurrency returns how many attempts of the destination may run at once.
func (r *Remote) Concurrency() int { return r.p.set.concurrency }

// FollowRedirects reports the destination's follow_redirects, which the
// Sender must be given for each attempt.
func (r *Remote) FollowRedirects() bool { return r.p.ep.follow }

// Success reports whether status counts as delivered.
func (r *Remote) Success(status int) bool { return r.p.success(status) }

// Outcome applies the destination's policy to one attempt of d: what to
// record (the attempt, with the failure and the reason it is final when it
// is), and for a retry when the next attempt is due.
func (r *Remote) Outcome(d store.Delivery, res Result, now time.Time) (Outcome, store.Attempt, time.Time) {
	return r.p.attemptRecord(r.opts, d, res.internal(), now)
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
// connection pool is sized for conc concurrent attempts. roots verifies the
// receivers' certificates; nil means the system's roots.
func NewSender(timeout time.Duration, conc int, roots *x509.CertPool) *Sender {
	var conf *tls.Config
	if roots != nil {
		conf = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	}
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

// RedactURL returns raw with its password and query values masked, fit for
// logs (internal/redact).
func RedactURL(raw string) string { return redact.String(raw) }
