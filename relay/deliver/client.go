package deliver

import (
	"context"
	"crypto/sha256"
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
	"github.com/relaygw/relay/relay/store"
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
	// defaultContentType is sent when the provider sent none.
	defaultContentType = "application/octet-stream"
)

// endpoint is a destination compiled for sending: its client, its fixed
// headers and its signer. It makes exactly one HTTP attempt per call.
type endpoint struct {
	url       string // as configured; never logged
	redacted  string // safe for logs and attempt records
	header    http.Header
	host      string // Host header override from headers, if any
	signer    *Signer
	userAgent string
	client    *retryablehttp.Client
}

// result is what one attempt produced.
type result struct {
	status   int
	header   http.Header
	err      error  // no response: transport error or timeout
	location string // redacted Location of a 3xx
	response string
	took     time.Duration
}

// failure describes a result that is not a success.
func (r result) failure() error {
	switch {
	case r.err != nil:
		return r.err
	case r.status >= 300 && r.status < 400:
		return fmt.Errorf("%w: status %d to %s", ErrRedirect, r.status, r.location)
	}
	return fmt.Errorf("%w %d", ErrStatus, r.status)
}

func newEndpoint(d config.Destination, timeout time.Duration, conc int, version string) (*endpoint, error) {
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: url must be an absolute http or https URL", ErrBadDestination, d.Name)
	}
	ep := &endpoint{
		url:       d.URL,
		redacted:  redactURL(u),
		header:    http.Header{},
		userAgent: "relay/" + version,
		client:    newClient(timeout, conc),
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
	return ep, nil
}

// newClient builds the destination's own client: its own connection pool, so
// a hanging destination cannot starve another of connections, sized for its
// workers; retries off, because Relay's retries are scheduled in the store.
func newClient(timeout time.Duration, conc int) *retryablehttp.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(conc, 2) * 2,
		MaxIdleConnsPerHost:   max(conc, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
	}
	return &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		// Its own logger prints the URL with its query; Relay logs itself.
		Logger:       nil,
		RetryMax:     0,
		CheckRetry:   func(context.Context, *http.Response, error) (bool, error) { return false, nil },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// headers returns every header of one attempt. Destination headers may
// override Content-Type and User-Agent but not the headers that identify and
// sign the delivery.
func (ep *endpoint) headers(d store.Delivery, now time.Time) http.Header {
	ev := d.Event
	h := make(http.Header, len(ep.header)+10)
	ct := ev.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	h.Set("Content-Type", ct)
	h.Set("User-Agent", ep.userAgent)
	for k, v := range ep.header {
		h[k] = v
	}
	key := ev.DedupeKey
	if key == "" {
		key = ev.ID
	}
	h.Set(HeaderIdempotencyKey, headerSafe(key))
	h.Set(HeaderEventID, ev.ID)
	h.Set(HeaderWebhookIDRelay, headerSafe(ev.WebhookID))
	h.Set(HeaderAttempt, strconv.Itoa(d.Attempts+1))
	if ep.signer != nil {
		h[HeaderWebhookID] = []string{d.ID}
		h[HeaderWebhookTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
		h[HeaderWebhookSignature] = []string{ep.signer.Sign(d.ID, now, ev.Body)}
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

// do makes one attempt of d. ctx cancels it (shutdown drain); the client's
// timeout bounds it.
func (ep *endpoint) do(ctx context.Context, d store.Delivery, now time.Time) result {
	return post(ctx, ep.client, ep.url, ep.host, ep.headers(d, now), d.Event.Body)
}

// post makes one POST attempt; a relay agent's Sender uses it too.
func post(ctx context.Context, client *retryablehttp.Client, rawURL, host string, header http.Header, body []byte) result {
	start := time.Now()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, rawURL, body)
	if err != nil {
		return result{err: fmt.Errorf("build request: %s", sanitize(err))}
	}
	req.Header = header
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: transportError{err}, took: time.Since(start)}
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, responseReadLimit))
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

// transportError wraps a client error so its text never carries the URL
// (net/http's *url.Error quotes it whole, query and userinfo included) while
// errors.As still reaches the cause.
type transportError struct{ err error }

func (e transportError) Error() string { return sanitize(e.err) }
func (e transportError) Unwrap() error { return e.err }

// Timeout reports whether the attempt ran out of time.
func (e transportError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// sanitize returns err's text without the request URL.
func sanitize(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return strings.ToLower(ue.Op) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// redactURL keeps scheme, host and path: userinfo and query may hold
// credentials (api keys in ?token= are common in webhook URLs).
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

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
