package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/relay/deliver"
)

// Defaults for ClientOptions.
const (
	DefaultConcurrency  = 8
	DefaultDeadAfter    = 15 * time.Second
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = time.Minute
	DefaultDrainTimeout = config.DefaultDrainTimeout
	// defaultHeartbeat is used until the relay says how often it wants one.
	defaultHeartbeat = 10 * time.Second
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// Server is the relay's base URL (the ingest listener, or the proxy in
	// front of it that terminates TLS). It must be https:// unless Insecure.
	Server string
	// Name and Token are the agent's entry in the relay's agents config.
	Name  string
	Token string
	// RootCAs verifies the relay's certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// ReceiverCAs verifies the certificates of the receivers the agent
	// delivers to; nil means the system roots. A destination's tls settings,
	// which the relay sends with its deliveries, add its ca_file to these
	// or turn checks off (insecure_skip_verify) for that destination.
	ReceiverCAs *x509.CertPool
	// Insecure allows a plain http:// Server, for local testing only.
	Insecure bool
	// Concurrency bounds the attempts running at once (and each
	// destination's attempts are bounded by its own concurrency, which the
	// relay sends); default DefaultConcurrency. The agent holds up to
	// holdFactor times as many deliveries, so that the next attempts never
	// wait for a poll and each poll brings several.
	Concurrency int
	// Proxy picks the proxy for the connection to the relay; default
	// http.ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY). Note that it never
	// proxies requests to localhost or loopback addresses.
	Proxy func(*http.Request) (*url.URL, error)
	// PollWait is how long the agent asks the relay to hold a poll open;
	// default DefaultPollWait. The relay may answer sooner.
	PollWait time.Duration
	// DeadAfter is how long past PollWait a poll, and how long any other
	// call, may go unanswered before the connection counts as dead and is
	// replaced; default DefaultDeadAfter.
	DeadAfter time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection tries,
	// which doubles from one to the other, with jitter. Failures of all the
	// agent's calls count together, so its loops back off as one.
	MinBackoff, MaxBackoff time.Duration
	// MaxAuthFailures, when positive, makes Run give up with
	// ErrAuthFailures after that many refusals of the token (401) in a
	// row; 0 keeps trying, since an operator may fix the relay's config.
	MaxAuthFailures int
	// TokenSource says where Token came from ("$RELAY_AGENT_TOKEN",
	// "-token-file /etc/relay/agent.token"), for the refusal message.
	TokenSource string
	// Sleep waits between tries (d, or until ctx ends; false when it
	// ended); default a timer. Tests replace it to skip real waiting.
	Sleep func(ctx context.Context, d time.Duration) bool
	// DrainTimeout is how long running attempts may finish after Run's
	// context ends; the rest are cancelled and handed back to the relay.
	DrainTimeout time.Duration
	// Logger receives connection changes and failed attempts; default
	// slog.Default().
	Logger *slog.Logger
	// Version goes into the User-Agent of calls to the relay.
	Version string
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	if o.PollWait <= 0 {
		o.PollWait = DefaultPollWait
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = DefaultDeadAfter
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.TokenSource == "" {
		o.TokenSource = "the token"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// Client is the agent: it runs inside the receiver's network, dials out to
// the relay, attempts the deliveries it is handed and reports each outcome.
// It only ever opens connections; it listens on nothing.
type Client struct {
	opts      ClientOptions
	server    string // base URL without a trailing slash
	redacted  string // for logs
	tr        *http.Transport
	hc        *http.Client
	log       *slog.Logger
	slots     chan struct{} // one token per delivery the agent may hold more
	running   chan struct{} // holds one token per attempt running
	notify    chan struct{} // an outcome is waiting to be reported
	heartbeat atomic.Int64  // nanoseconds, as the relay asks
	// beat cuts the heartbeat loop's wait short when the relay asks for
	// heartbeats sooner than the loop is waiting (up).
	beat chan struct{}

	mu      sync.Mutex
	held    map[string]*flight // by ticket: attempting, or outcome not yet acknowledged
	pending []report           // finished, not yet acknowledged, oldest first
	sending map[string]bool    // tickets whose outcome is in a report in flight
	// finished lists tickets whose attempts ended, for the next poll to
	// announce; acked is signalled when outcomes are acknowledged.
	finished []string
	acked    chan struct{}

	sendersMu sync.Mutex
	senders   map[string]*deliver.Sender
	destSems  map[string]chan struct{} // per destination and concurrency

	connMu    sync.Mutex
	connected bool
	fails     int // consecutive failed calls, for the backoff and the log
	authFails int // consecutive refusals of the token
	abort     context.CancelCauseFunc
}

// flight is a delivery the agent holds.
type flight struct {
	id, dest string
	cancel   context.CancelFunc
	lost     bool // the relay said the lease is gone: drop the outcome
}

// NewClient checks opts and prepares the connection to the relay. It dials
// nothing yet.
func NewClient(opts ClientOptions) (*Client, error) {
	opts = opts.withDefaults()
	u, err := url.Parse(opts.Server)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrServerURL, redact.String(opts.Server))
	case u.User != nil || u.RawQuery != "":
		return nil, fmt.Errorf("%w: it must not carry credentials or a query; the token goes in -token", ErrServerURL)
	case u.Scheme == "http" && !opts.Insecure:
		return nil, fmt.Errorf("%w: %s is plain http; use https, or -insecure for local testing", ErrServerURL, redact.URL(u))
	case opts.Name == "" || opts.Token == "":
		return nil, fmt.Errorf("%w: the agent name and token are required", ErrBadConfig)
	}
	c := &Client{
		opts:     opts,
		server:   strings.TrimSuffix(u.String(), "/"),
		redacted: redact.URL(u),
		log:      opts.Logger.With("agent", opts.Name),
		slots:    make(chan struct{}, holdFactor*opts.Concurrency),
		running:  make(chan struct{}, opts.Concurrency),
		destSems: map[string]chan struct{}{},
		notify:   make(chan struct{}, 1),
		beat:     make(chan struct{}, 1),
		acked:    make(chan struct{}, pollers), // one wake-up for each poller
		held:     map[string]*flight{},
		sending:  map[string]bool{},
		senders:  map[string]*deliver.Sender{},
	}
	for range holdFactor * opts.Concurrency {
		c.slots <- struct{}{}
	}
	c.heartbeat.Store(int64(defaultHeartbeat))
	c.tr = &http.Transport{
		Proxy:               opts.Proxy,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		// HTTP/1.1 on purpose: a call that times out closes its own
		// connection, so a dead one is never reused (an HTTP/2 stream
		// timeout would leave the connection in the pool).
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: reporters + pollers + 1, // and the heartbeat
		IdleConnTimeout:     90 * time.Second,
	}
	c.hc = &http.Client{Transport: c.tr}
	return c, nil
}

// LoadCA returns the system roots plus the certificates in the PEM file, to
// verify a relay whose certificate a private CA issued.
func LoadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("agent: read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("agent: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Connected reports whether the last call to the relay succeeded.
func (c *Client) Connected() bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.connected
}

// Run polls the relay and attempts deliveries until ctx ends, reconnecting
// forever when the connection fails. Call it once. Then it stops polling, lets running
// attempts finish for up to DrainTimeout, hands the rest back, reports what
// it can and returns nil.
func (c *Client) Run(ctx context.Context) error {
	c.log.Info("agent: starting", "server", c.redacted, "concurrency", c.opts.Concurrency)
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	c.connMu.Lock()
	c.abort = abort
	c.connMu.Unlock()
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.opts.DrainTimeout, cancelHard)
		context.AfterFunc(hard, func() { t.Stop() })
	})
	defer stopDrainTimer()

	// The reporter outlives the poller so that attempts finishing during
	// the drain are reported and their leases kept alive meanwhile.
	rctx, stopReporters := context.WithCancel(context.WithoutCancel(ctx))
	var reportLoops sync.WaitGroup
	reportLoops.Go(func() { c.heartbeatLoop(rctx) })
	for range reporters {
		reportLoops.Go(func() { c.reportLoop(rctx) })
	}
	var workers, pollLoops sync.WaitGroup
	for range pollers {
		pollLoops.Go(func() { c.pollLoop(ctx, hard, &workers) })
	}
	pollLoops.Wait()
	workers.Wait()
	stopReporters()
	reportLoops.Wait()
	c.flush()
	c.closeSenders()
	c.tr.CloseIdleConnections()
	if err := context.Cause(ctx); errors.Is(err, ErrAuthFailures) {
		c.log.Error("agent: stopped: the relay refused the token too many times", "refusals", c.opts.MaxAuthFailures)
		return err
	}
	c.log.Info("agent: stopped")
	return nil
}

// pollers is how many polls may be in flight at once. A poll takes every
// free slot, so a second one only goes out when slots free up while the
// first is on its way: an idle agent holds one poll open, a busy one hides
// the round trip behind the other.
const pollers = 2

// pollLoop asks for as many deliveries as there are free slots, whenever
// there is at least one, until ctx ends.
func (c *Client) pollLoop(ctx, hard context.Context, workers *sync.WaitGroup) {
	fails := 0
	for {
		if !c.waitBacklog(ctx) {
			return
		}
		n, ok := c.acquire(ctx)
		if !ok {
			return
		}
		var resp leaseResponse
		req := leaseRequest{Max: n, WaitMS: millis(c.opts.PollWait), Finished: c.takeFinished()}
		err := c.call(ctx, PathLease, req, &resp, c.opts.PollWait+c.opts.DeadAfter)
		if err != nil {
			c.returnFinished(req.Finished)
		}
		if ctx.Err() != nil {
			c.releaseSlots(n)
			// A poll cut short by the shutdown may have been answered.
			for _, j := range resp.Deliveries {
				c.push(report{Ticket: j.Ticket, Release: true})
			}
			return
		}
		if err != nil {
			c.releaseSlots(n)
			fails++
			wait, stop := c.down(err, fails)
			if stop || !c.opts.Sleep(ctx, wait) {
				return
			}
			continue
		}
		fails = 0
		c.up(resp.HeartbeatMS)
		got := resp.Deliveries
		if len(got) > n { // more than asked for: give the extra back
			for _, j := range got[n:] {
				c.push(report{Ticket: j.Ticket, Release: true})
			}
			got = got[:n]
		}
		c.releaseSlots(n - len(got))
		for _, j := range got {
			c.start(ctx, hard, j, resp.TLS[j.Destination], workers)
		}
	}
}

// backlogLimit bounds the deliveries whose outcomes wait for the relay's
// acknowledgement; past it the agent stops asking for more, so a relay whose
// store is slow does not pile up leases here. The same bound as a local
// dispatcher's: many outcomes in writing at once share store commits.
func (c *Client) backlogLimit() int { return c.opts.Concurrency + max(4*c.opts.Concurrency, 256) }

// waitBacklog waits until the unacknowledged outcomes are under the limit.
func (c *Client) waitBacklog(ctx context.Context) bool {
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n < c.backlogLimit() {
			return true
		}
		select {
		case <-c.acked:
		case <-ctx.Done():
			return false
		}
	}
}

// takeFinished returns the tickets whose attempts ended since the last poll.
func (c *Client) takeFinished() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.finished
	c.finished = nil
	return f
}

// returnFinished puts back the tickets of a poll that failed.
func (c *Client) returnFinished(f []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = append(f, c.finished...)
}

// acquire waits for a free slot and takes every free one.
func (c *Client) acquire(ctx context.Context) (int, bool) {
	select {
	case <-c.slots:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for {
		select {
		case <-c.slots:
			n++
		default:
			return n, true
		}
	}
}

func (c *Client) releaseSlots(n int) {
	for range n {
		c.slots <- struct{}{}
	}
}

// start runs one delivery on its own goroutine, in one of the slots that
// pollLoop took: it waits for a free attempt (within the agent's and the
// destination's concurrency), then attempts. A delivery still waiting when
// ctx ends is handed back unattempted.
func (c *Client) start(ctx, hard context.Context, j assignment, tls wireTLS, workers *sync.WaitGroup) {
	actx, cancel := context.WithCancel(hard)
	f := &flight{id: j.ID, dest: j.Destination, cancel: cancel}
	c.mu.Lock()
	c.held[j.Ticket] = f
	c.mu.Unlock()
	workers.Go(func() {
		defer func() { c.slots <- struct{}{} }()
		defer cancel()
		dest := c.destSem(j)
		if !acquireBoth(ctx, actx, dest, c.running) {
			c.mu.Lock()
			lost := f.lost
			c.mu.Unlock()
			if !lost { // shutting down: hand it back now, not at lease expiry
				c.push(report{Ticket: j.Ticket, Release: true})
			}
			return
		}
		defer func() {
			<-c.running
			if dest != nil {
				<-dest
			}
		}()
		c.attempt(actx, hard, j, tls, f)
	})
}

// acquireBoth takes a token of dest (nil: no limit) and then of running;
// false when ctx or actx ended first.
func acquireBoth(ctx, actx context.Context, dest, running chan struct{}) bool {
	if dest != nil {
		select {
		case dest <- struct{}{}:
		case <-ctx.Done():
			return false
		case <-actx.Done():
			return false
		}
	}
	select {
	case running <- struct{}{}:
		return true
	case <-ctx.Done():
	case <-actx.Done():
	}
	if dest != nil {
		<-dest
	}
	return false
}

// destSem returns the semaphore that bounds j's destination to its
// concurrency, or nil when the relay sent none.
func (c *Client) destSem(j assignment) chan struct{} {
	if j.Concurrency <= 0 {
		return nil
	}
	key := fmt.Sprintf("%s|%d", j.Destination, j.Concurrency)
	c.sendersMu.Lock()
	defer c.sendersMu.Unlock()
	sem := c.destSems[key]
	if sem == nil {
		sem = make(chan struct{}, j.Concurrency)
		c.destSems[key] = sem
	}
	return sem
}

// attempt makes the POST, verifying the receiver with the destination's
// tls settings, and queues its report for the reporter.
func (c *Client) attempt(ctx, hard context.Context, j assignment, tls wireTLS, f *flight) {
	log := c.log.With("destination", j.Destination, "delivery", j.ID, "attempt", j.Attempt)
	var res deliver.Result
	if s, err := c.sender(j, tls); err != nil {
		res.Err = err
	} else {
		res = s.Send(ctx, j.URL, j.Host, j.Header, j.Body, j.FollowRedirects)
	}
	c.mu.Lock()
	lost := f.lost
	c.mu.Unlock()
	if lost {
		log.Warn("agent: lease lost during the attempt; the relay has given the delivery to someone else")
		return
	}
	if res.Err != nil && hard.Err() != nil {
		log.Info("agent: attempt cut short by shutdown; handing the delivery back")
		c.push(report{Ticket: j.Ticket, Release: true})
		return
	}
	o := report{
		Ticket:      j.Ticket,
		Status:      res.Status,
		Location:    res.Location,
		NotFollowed: res.NotFollowed,
		Response:    res.Response,
		DurationNS:  int64(res.Took),
	}
	if res.Err != nil {
		o.Error = res.Err.Error()
		retry, _ := deliver.DefaultCheckRetry(context.Background(), nil, res.Err)
		o.Final = !retry
	}
	if res.Header != nil {
		o.RetryAfter = res.Header.Get("Retry-After")
	}
	if res.Err == nil && success(j.SuccessStatus, res.Status) {
		log.Debug("agent: delivered", "status", res.Status, "took", res.Took)
	} else {
		log.Info("agent: attempt failed", "status", res.Status, "error", o.Error, "took", res.Took)
	}
	c.push(o)
}

func success(list []int, status int) bool {
	if len(list) == 0 {
		return status >= 200 && status < 300
	}
	for _, s := range list {
		if s == status {
			return true
		}
	}
	return false
}

// sender returns the Sender for j's destination, timeout and tls settings.
// Each destination gets its own connection pool, as on the relay, which
// verifies receivers with the agent's roots (-receiver-ca) plus the
// destination's CA, or not at all when the destination says
// insecure_skip_verify.
func (c *Client) sender(j assignment, t wireTLS) (*deliver.Sender, error) {
	timeout := fromMillis(j.TimeoutMS)
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	ca := sha256.Sum256([]byte(t.CAPEM))
	key := fmt.Sprintf("%s|%d|%x|%t", j.Destination, timeout, ca[:8], t.InsecureSkipVerify)
	c.sendersMu.Lock()
	defer c.sendersMu.Unlock()
	s := c.senders[key]
	if s == nil {
		conf, err := deliver.TLS{CAPEM: []byte(t.CAPEM), InsecureSkipVerify: t.InsecureSkipVerify}.Config(c.opts.ReceiverCAs)
		if err != nil {
			return nil, fmt.Errorf("agent: destination %s: %w", j.Destination, err)
		}
		if t.InsecureSkipVerify {
			c.log.Warn("agent: TLS certificate checks are off for this destination (its tls.insecure_skip_verify on the relay)", "destination", j.Destination)
		}
		s = deliver.NewSender(timeout, c.opts.Concurrency, conf)
		c.senders[key] = s
	}
	return s, nil
}

func (c *Client) closeSenders() {
	c.sendersMu.Lock()
	defer c.sendersMu.Unlock()
	for _, s := range c.senders {
		s.Close()
	}
}

// call POSTs in to the relay and decodes its answer into out. Any failure
// drops the idle connections too: after a network change they are likely
// dead as well.
func (c *Client) call(ctx context.Context, path string, in, out any, timeout time.Duration) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("agent: %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	req.Header.Set(HeaderAgent, c.opts.Name)
	req.Header.Set("User-Agent", "relay-agent/"+c.opts.Version)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.tr.CloseIdleConnections()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return fmt.Errorf("agent: %s: %w", path, err)
	}
	defer func() {
		// Read to the end so the connection can carry the next call.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRequestBytes))
		resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w", path, ErrUnauthorized)
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("agent: %s: relay answered %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		c.tr.CloseIdleConnections()
		return fmt.Errorf("agent: %s: read answer: %w", path, err)
	}
	return nil
}

// up records a successful call, logging a change of state, and takes the
// relay's heartbeat interval. A poll may bring leases while the heartbeat
// loop waits out an older, longer interval (the relay restarted with a
// shorter delivery.lease) or a backoff: then the loop is woken, or the
// leases would lapse before their first heartbeat.
func (c *Client) up(heartbeatMS int64) {
	wake := false
	if hb := fromMillis(heartbeatMS); hb > 0 {
		hb = min(max(hb, 10*time.Millisecond), time.Minute)
		wake = c.heartbeat.Swap(int64(hb)) > int64(hb)
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if !c.connected {
		c.log.Info("agent: connected to relay", "server", c.redacted, "after_failures", c.fails)
		wake = true
	}
	if wake {
		select {
		case c.beat <- struct{}{}:
		default:
		}
	}
	c.connected, c.fails, c.authFails = true, 0, 0
}

// down records a failed call, logs it, and returns how long to wait before
// the next try: exponential backoff with jitter, capped at MaxBackoff, over
// the failures of all loops together (attempt is the caller's own count).
// After MaxAuthFailures refusals in a row it aborts Run and says stop.
func (c *Client) down(err error, attempt int) (wait time.Duration, stop bool) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.fails++
	wait = backoff(c.opts.MinBackoff, c.opts.MaxBackoff, max(attempt, c.fails))
	switch {
	case errors.Is(err, ErrUnauthorized):
		c.authFails++
		if m := c.opts.MaxAuthFailures; m > 0 && c.authFails >= m {
			if c.abort != nil {
				c.abort(fmt.Errorf("%w (%d refusals in a row; -max-auth-failures %d)", ErrAuthFailures, c.authFails, m))
			}
			return 0, true
		}
		c.log.Error(fmt.Sprintf("agent: the relay refused %s (401): it must equal the token of agent %q in the relay's agents config", c.opts.TokenSource, c.opts.Name),
			"refusals", c.authFails, "retry_in", wait)
	case c.connected:
		c.log.Warn("agent: connection to relay lost; reconnecting", "error", err, "retry_in", wait)
	default:
		c.log.Info("agent: relay unreachable; retrying", "error", err, "failures", c.fails, "retry_in", wait)
	}
	c.connected = false
	return wait, false
}

// backoff returns a wait in [d/2, d] with d = lo*2^(attempt-1) capped at hi.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
