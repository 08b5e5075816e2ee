package deliver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/transform"
)

// Request headers that Relay sets on every delivery.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEventID        = "X-Relay-Event-Id"
	HeaderWebhookIDRelay = "X-Relay-Webhook-Id"
	HeaderAttempt        = "X-Relay-Attempt"
)

const (
	// responseReadLimit bounds how much of a response body is read, so a
	// receiver that streams forever cannot hold a worker.
	responseReadLimit = 64 << 10
	// responseKeep is how much of the body is kept in the attempt record.
	responseKeep = 1 << 10
	// errorKeep is how much of an attempt's error text is kept: a
	// redirect's Location is the receiver's to choose, and an agent's
	// error is the agent's.
	errorKeep = 1 << 10
	// defaultContentType is sent when the provider sent none.
	defaultContentType = "application/octet-stream"
)

// maxRedirects is how many redirects follow_redirects follows in one
// attempt, as curl's and browsers' limits go (net/http allows 10).
const maxRedirects = 5

// endpoint is a destination compiled for sending: its client, its fixed
// headers and its signer. It makes exactly one HTTP attempt per call.
type endpoint struct {
	url       *url.URL // as configured; never logged
	redacted  string   // safe for logs and attempt records
	header    http.Header
	host      string // Host header override from headers, if any
	signer    *Signer
	userAgent string
	client    *retryablehttp.Client // nil for an agent destination
	hops      *redirector           // redirect hops; nil unless follow
	timeout   time.Duration         // per attempt, redirects included
	follow    bool                  // follow_redirects
	insecure  bool                  // tls.insecure_skip_verify, for a warning at start
	transform *transform.Transform  // nil: the original bytes go out
	limits    transform.Limits
}

// result is what one attempt produced.
type result struct {
	status   int
	header   http.Header
	err      error  // no response: transport error or timeout
	location string // redacted Location of a 3xx
	why      string // why a 3xx was not followed, when follow_redirects is on
	response string
	took     time.Duration
}

// failure describes a result that is not a success; success names the
// destination's success_status, so a 204 refused by [200, 202] says why.
func (r result) failure(success string) error {
	switch {
	case r.err != nil:
		return r.err
	case r.status >= 300 && r.status < 400:
		return fmt.Errorf("%w: status %d to %s%s", ErrRedirect, r.status, r.location, r.why)
	}
	return fmt.Errorf("%w %d, not in %s", ErrStatus, r.status, success)
}

func newEndpoint(d config.Destination, set destSettings, version string) (*endpoint, error) {
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: url must be an absolute http or https URL", ErrBadDestination, d.Name)
	}
	ep := &endpoint{
		url:       u,
		redacted:  redactURL(u),
		header:    http.Header{},
		userAgent: "relay/" + version,
		timeout:   set.timeout,
		follow:    d.FollowRedirects,
		insecure:  d.TLS.InsecureSkipVerify,
	}
	for k, v := range d.Headers {
		if strings.EqualFold(k, "Host") {
			ep.host = v
			continue
		}
		ep.header.Set(k, v)
	}
	if d.SigningSecret != "" {
		if ep.signer, err = NewSigner(d.SigningSecret); err != nil {
			return nil, fmt.Errorf("destination %q: %w", d.Name, err)
		}
	}
	if d.Transform != nil {
		if ep.transform, err = transform.New(*d.Transform); err != nil {
			return nil, fmt.Errorf("%w %q: transform: %w", ErrBadDestination, d.Name, err)
		}
		ep.limits = transform.DefaultLimits()
	}
	return ep, nil
}

// newClient builds the destination's own client: its own connection pool, so
// a hanging destination cannot starve another of connections, sized for its
// workers; retries off, because Relay's retries are scheduled in the store.
// tlsConf nil means Go's defaults. timeout bounds dialing and the TLS
// handshake; the attempt as a whole is bounded by post's context, not by
// http.Client.Timeout, which would arm a second timer per attempt.
// Compression is off: Relay keeps at most 1 KiB of a response, so asking
// receivers for gzip (net/http's default) would only add a header line to
// every request and work on both sides; a receiver that compresses unasked
// has its bytes recorded as sent.
func newClient(timeout time.Duration, conc int, tlsConf *tls.Config) *retryablehttp.Client {
	return wrapClient(newTransport(timeout, conc, tlsConf, nil))
}

// newTransport builds the transport of newClient. With a guard, every
// address it dials and every proxy it would use pass the guard first: it is
// the transport of redirect hops.
func newTransport(timeout time.Duration, conc int, tlsConf *tls.Config, guard *dialGuard) *http.Transport {
	dialer := &net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if guard != nil {
		dialer.ControlContext = guard.control
		proxy = guard.proxy
	}
	return &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(conc, 2) * 2,
		MaxIdleConnsPerHost:   max(conc, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

func wrapClient(tr *http.Transport) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		// Its own logger prints the URL with its query; Relay logs itself.
		Logger: nil,
		// One try per Do. The retry policy (Options.CheckRetry) runs once
		// the result is classified (decide), and the store schedules the
		// retry; here, a CheckRetry that said yes would make Do report a
		// 5xx as an error.
		RetryMax:     0,
		CheckRetry:   func(context.Context, *http.Response, error) (bool, error) { return false, nil },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// redirector makes the hops of followed redirects: its own connection pool,
// so a connection it dials is never reused for anything but a hop, and a
// dialer that refuses what guard refuses. lookup resolves the destination's
// configured host, to decide whether it is on a non-public network.
type redirector struct {
	client *retryablehttp.Client
	lookup lookupFunc
}

func newRedirector(timeout time.Duration, conc int, tlsConf *tls.Config, guard *dialGuard) *redirector {
	return &redirector{client: wrapClient(newTransport(timeout, conc, tlsConf, guard)), lookup: defaultLookup}
}

func (r *redirector) closeIdle() {
	if r != nil {
		r.client.HTTPClient.CloseIdleConnections()
	}
}

// headers returns every header of one attempt. Destination headers may
// override Content-Type and User-Agent but not the headers that identify and
// sign the delivery.
func (ep *endpoint) headers(d store.Delivery, now time.Time) http.Header {
	return ep.headersFor(d, now, d.Event.Body, d.Event.ContentType, nil)
}

// headersFor is headers for a body and content type that may be a
// transform's, with the transform's headers (extra) after the configured
// ones; the signature covers body.
func (ep *endpoint) headersFor(d store.Delivery, now time.Time, body []byte, ct string, extra map[string]string) http.Header {
	ev := d.Event
	h := make(http.Header, len(ep.header)+len(extra)+10)
	// One backing array for the values Relay sets: a header value is a
	// one-element slice, and nine small allocations per attempt add up.
	vals := make([]string, 0, 9)
	set := func(k, v string) { // k is canonical already
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if ct == "" {
		ct = defaultContentType
	}
	set("Content-Type", ct)
	set("User-Agent", ep.userAgent)
	for k, v := range ep.header {
		h[k] = v
	}
	for k, v := range extra {
		h[k] = []string{v}
	}
	key := ev.DedupeKey
	if key == "" {
		key = ev.ID
	}
	set(HeaderIdempotencyKey, headerSafe(key))
	set(HeaderEventID, ev.ID)
	set(HeaderWebhookIDRelay, headerSafe(ev.WebhookID))
	set(HeaderAttempt, strconv.Itoa(d.Attempts+1))
	if ep.signer != nil {
		// The Standard Webhooks names are lower-case on purpose, as the
		// specification writes them.
		set(HeaderWebhookID, d.ID)
		// The timestamp and the signature share one string: one
		// allocation where there were two.
		var buf [96]byte // room for one signature
		b := strconv.AppendInt(buf[:0], now.Unix(), 10)
		ts := len(b)
		stamped := string(ep.signer.appendSign(b, d.ID, now, body))
		set(HeaderWebhookTimestamp, stamped[:ts])
		set(HeaderWebhookSignature, stamped[ts:])
	}
	return h
}

// maxKeyHeader bounds a header built from provider data.
const maxKeyHeader = 200

// headerSafe makes a value taken from the provider's request (the dedupe
// value, the webhook id) fit for a header: net/http refuses control bytes,
// and that refusal would dead-letter the delivery. A value with bytes outside
// printable ASCII is percent-encoded; an overlong one is replaced by its
// SHA-256. Both are deterministic, so the key stays the same on every retry.
func headerSafe(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x21 || c > 0x7e || c == '%' {
				fmt.Fprintf(&b, "%%%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
		v = b.String()
	}
	if len(v) > maxKeyHeader {
		sum := sha256.Sum256([]byte(v))
		v = "sha256-" + hex.EncodeToString(sum[:])
	}
	return v
}

// do makes one attempt of d under attemptCtx, which the caller ends at the
// destination's timeout (see keeper); ctx, its parent, ends only for a
// shutdown drain. start is when the attempt began by the real clock, now
// the same moment by the clock that timestamps signatures.
func (ep *endpoint) do(ctx, attemptCtx context.Context, d store.Delivery, start, now time.Time) result {
	header, body, err := ep.prepare(attemptCtx, d, now)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	return send(ctx, attemptCtx, ep.client, ep.hops, ep.timeout, ep.url, ep.host, header, body, ep.follow, start)
}

// prepare runs the destination's transform on d's event and returns the
// attempt's headers and body, signed over the transformed body. Its error
// wraps transform.ErrTransform: a transform fails the same way on every
// attempt, so the delivery is dead-lettered at once. A panic in the
// transform is an error too, never a crash of the worker.
func (ep *endpoint) prepare(ctx context.Context, d store.Delivery, now time.Time) (header http.Header, body []byte, err error) {
	if ep.transform == nil {
		return ep.headers(d, now), d.Event.Body, nil
	}
	defer func() {
		if r := recover(); r != nil {
			header, body = nil, nil
			err = &transform.Error{Part: "run", Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	out, err := transform.Run(ctx, ep.transform, d.Event.ContentType, d.Event.Body, ep.limits)
	if err != nil {
		return nil, nil, err
	}
	body, ct := out.Sent(d.Event.Body, d.Event.ContentType)
	return ep.headersFor(d, now, body, ct, out.Header), body, nil
}

// post makes one POST attempt, following up to maxRedirects redirects when
// follow is set; a relay agent's Sender uses it. timeout, when positive,
// bounds the whole attempt, reading the response included.
func post(ctx context.Context, client *retryablehttp.Client, hops *redirector, timeout time.Duration, target *url.URL, host string, header http.Header, body []byte, follow bool) result {
	attemptCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		attemptCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return send(ctx, attemptCtx, client, hops, timeout, target, host, header, body, follow, time.Now())
}

// send is post with the attempt's context made by the caller: attemptCtx
// ending while ctx has not is the attempt timing out after timeout. A
// result's took counts from start. The first request goes through client,
// every redirect hop through hops, whose dialer refuses what the relay must
// not be sent to (guard.go).
func send(ctx, attemptCtx context.Context, client *retryablehttp.Client, hops *redirector, timeout time.Duration, target *url.URL, host string, header http.Header, body []byte, follow bool, start time.Time) result {
	reqCtx := attemptCtx
	var from int // status of the redirect being followed
	for n := 0; ; n++ {
		resp, err := client.Do(newRequest(reqCtx, target, host, header, body))
		if err != nil {
			var refused redirectRefusal
			if errors.As(err, &refused) {
				return result{err: fmt.Errorf("%w: status %d to %s: %s", ErrRedirectRefused, from, redactURL(target), refused.why), took: time.Since(start)}
			}
			if ctx.Err() == nil && (attemptCtx.Err() != nil || isTimeout(err)) {
				err = timeoutError{after: timeout, err: err}
			}
			return result{err: transportError{err}, took: time.Since(start)}
		}
		var next *url.URL
		var why string
		if follow && hops != nil && followable(resp.StatusCode) {
			next, why = nextHop(resp, n)
		}
		if next == nil {
			r := readResponse(resp, start)
			r.why = why
			return r
		}
		// Read a little so the connection can be reused, never the whole of
		// a body that may not end.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, responseReadLimit))
		resp.Body.Close()
		if n == 0 {
			pol := hopPolicy{private: privateTarget(attemptCtx, hops.lookup, target)}
			reqCtx = context.WithValue(attemptCtx, hopPolicyKey{}, pol)
			client = hops.client
		}
		if next.Host != resp.Request.URL.Host {
			header = hopHeader(header)
			host = ""
		}
		from = resp.StatusCode
		target = next
	}
}

// hopKeeps are the headers a request keeps when a redirect changes host:
// those Relay builds itself, none of them a secret (the signature proves
// the body to whoever holds the key and no one else). Everything else goes,
// which is every header the destination's config sets (API keys), besides
// Authorization, Proxy-Authorization and Cookie. The list is of what to
// keep, not what to drop, so a header an agent received from a relay of
// another version is dropped too.
var hopKeeps = []string{
	"Content-Type", "User-Agent", HeaderIdempotencyKey, HeaderEventID, HeaderWebhookIDRelay, HeaderAttempt,
	HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature,
}

// hopHeader returns the headers of a hop to another host: h without what
// must stay with the host it was configured for.
func hopHeader(h http.Header) http.Header {
	out := make(http.Header, len(hopKeeps))
	for _, k := range hopKeeps {
		if v, ok := h[k]; ok {
			out[k] = v
		}
	}
	return out
}

// newRequest builds one attempt's POST from a parsed URL. It does not use
// retryablehttp.NewRequestWithContext, which parses the URL string again
// at every attempt and hop and gives the request a body function that only
// the retry loop (off) reads: the retryablehttp.Request here has none, so
// its one try sends Body as it is. GetBody is set for net/http's replay on
// a closed pooled connection.
func newRequest(ctx context.Context, u *url.URL, host string, header http.Header, body []byte) *retryablehttp.Request {
	if host == "" {
		host = strings.TrimSuffix(u.Host, ":") // as NewRequestWithContext has it
	}
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       host,
		Body:       http.NoBody,
		GetBody:    func() (io.ReadCloser, error) { return http.NoBody, nil },
	}
	if len(body) > 0 {
		req.ContentLength = int64(len(body))
		// net/http knows this pair for memory and writes headers and body
		// in one flush; a body type of Relay's own, one allocation fewer,
		// made it flush the headers apart (isKnownInMemoryReader).
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return &retryablehttp.Request{Request: req.WithContext(ctx)}
}

// followable reports the redirects that follow_redirects follows: those a
// POST may be repeated for. 303 asks for a GET, which no receiver of a
// webhook wants, and 300, 304 and 305 are not redirects to one place.
func followable(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// nextHop returns where a redirect leads, or nil and why it is not followed.
func nextHop(resp *http.Response, hops int) (*url.URL, string) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, ""
	}
	u, err := resp.Request.URL.Parse(loc)
	switch {
	case err != nil:
		return nil, ""
	case u.Scheme != resp.Request.URL.Scheme:
		return nil, " (not followed: it changes the scheme)"
	case hops >= maxRedirects:
		return nil, fmt.Sprintf(" (not followed: %d redirects followed already)", maxRedirects)
	}
	return u, ""
}

// readResponse reads up to responseReadLimit of resp's body and closes it:
// a receiver that streams without end cannot hold a worker or its memory.
func readResponse(resp *http.Response, start time.Time) result {
	defer resp.Body.Close()
	var body []byte
	var readErr error
	if resp.ContentLength != 0 { // most receivers answer with no body
		body, readErr = io.ReadAll(io.LimitReader(resp.Body, responseReadLimit))
	}
	r := result{
		status:   resp.StatusCode,
		header:   resp.Header,
		response: truncate(body, responseKeep),
		took:     time.Since(start),
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		r.location = redactLocation(resp)
	}
	if readErr != nil {
		// The status arrived; a body cut short does not change it, but say so.
		r.response += " [body read failed: " + sanitize(readErr) + "]"
	}
	return r
}

// timeoutError is an attempt that ran out of its destination's timeout.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e timeoutError) Error() string {
	if e.after <= 0 {
		return "timed out"
	}
	return "timed out after " + e.after.String()
}
func (e timeoutError) Unwrap() error { return e.err }
func (e timeoutError) Timeout() bool { return true }

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// transportError wraps a client error so its text never carries the URL
// (net/http's *url.Error quotes it whole, query and userinfo included) while
// errors.As still reaches the cause.
type transportError struct{ err error }

func (e transportError) Error() string { return sanitize(e.err) }
func (e transportError) Unwrap() error { return e.err }

// Timeout reports whether the attempt ran out of time.
func (e transportError) Timeout() bool { return isTimeout(e.err) }

// sanitize returns err's text without the request URL.
func sanitize(err error) string {
	var te timeoutError
	if errors.As(err, &te) {
		return te.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return strings.ToLower(ue.Op) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// redactURL hides the password and the query values (api keys in ?token=
// are common in webhook URLs), with the helper every URL shown goes
// through.
func redactURL(u *url.URL) string { return redact.URL(u) }

func redactLocation(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "(no Location)"
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "(unparsable Location)"
	}
	return redactURL(u)
}

// truncateString is truncate for a string, without a copy when s is short
// and valid already.
func truncateString(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	return truncate([]byte(s[:min(len(s), n+utf8.UTFMax)]), n)
}

// truncate returns at most n bytes of b as valid UTF-8 text.
func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		// Drop a multi-byte rune cut in half rather than mangle it.
		i := len(b) - 1
		for i > 0 && len(b)-i < utf8.UTFMax && !utf8.RuneStart(b[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(b[i:]) {
			b = b[:i]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
