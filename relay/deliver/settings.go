package deliver

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/transform"
)

// destSettings are a destination's numbers, read from its config.
type destSettings struct {
	timeout     time.Duration
	concurrency int
	maxAttempts int
	initial     time.Duration
	maxInterval time.Duration
	maxAge      time.Duration
	schedule    []time.Duration // explicit waits; nil means exponential backoff
	success     map[int]bool    // nil means any 2xx
	successText string          // success_status as failures name it
	rateLimit   float64         // deliveries per second; 0 means none
	circuit     breakerConfig
}

// settingsFor reads d's settings. Defaults are config's: a destination from
// config.Load has them already, and one built by hand gets them from
// d.SetDefaults, so deliver keeps no copy of its own.
func settingsFor(d config.Destination) destSettings {
	d.SetDefaults()
	s := destSettings{
		timeout:     d.Timeout.D(),
		concurrency: d.Concurrency,
		maxAttempts: d.Retry.MaxAttempts,
		initial:     d.Retry.InitialInterval.D(),
		maxInterval: d.Retry.MaxInterval.D(),
		maxAge:      d.Retry.MaxAge.D(),
		rateLimit:   d.RateLimit,
		circuit: breakerConfig{
			failures: d.Circuit.Failures,
			first:    d.Circuit.FirstCooldown.D(),
			cooldown: d.Circuit.Cooldown.D(),
			disabled: d.Circuit.Disabled,
		},
	}
	for _, w := range d.Retry.Schedule {
		s.schedule = append(s.schedule, max(w.D(), 0))
	}
	s.successText = "success_status (any 2xx)"
	if len(d.SuccessStatus) > 0 {
		s.successText = fmt.Sprintf("success_status %v", d.SuccessStatus)
		s.success = make(map[int]bool, len(d.SuccessStatus))
		for _, c := range d.SuccessStatus {
			s.success[c] = true
		}
	}
	return s
}

// heldLimit bounds the deliveries a dispatcher holds at once (being attempted,
// or waiting for their outcome's write), so that a slow store cannot pile up
// leases; docs/benchmarks.md ("Why the tuned constants are what they are")
// says why this many.
func heldLimit(concurrency int) int { return concurrency + max(4*concurrency, 2048) }

// leaseAhead bounds the deliveries handed out: the attempts (at most
// concurrency) and as many more leased ahead, queued for an attempt slot.
// A worker that finishes an attempt then finds the next delivery leased,
// its body read, instead of waiting for the dispatcher's next Lease, and
// the dispatcher leases in batches rather than one delivery per freed slot.
// A delivery waiting for a slot has its lease extended like one being
// attempted.
func leaseAhead(concurrency int) int { return 2 * concurrency }

// yieldStep and yieldFor pace a dispatcher that yields to ingest
// (Options.Yield): it looks again every yieldStep, and leases anyway after
// yieldFor.
const (
	yieldStep = time.Millisecond
	yieldFor  = 20 * time.Millisecond
)

// leaseBatch is the fewest deliveries a dispatcher leases while every attempt
// slot has a delivery: half a pool. With the backlog benchmark's concurrency
// of 8, leasing whenever a slot freed made 44k Lease calls for 50k
// deliveries.
func leaseBatch(concurrency int) int { return max(concurrency/2, 1) }

// profile is one version of a destination, compiled: its settings and its
// endpoint. A config reload gives a dispatcher a new profile; an attempt
// keeps the profile it started with to the end.
type profile struct {
	cfg   config.Destination
	set   destSettings
	ep    *endpoint
	lease time.Duration // Options.Lease, or the destination's timeout plus Options.LeaseMargin
	tls   TLS           // read once: an agent destination's go to its agent
}

// newProfile compiles d, with the HTTP client this relay's workers attempt
// with unless an agent attempts (with its own client and d's tls settings).
func newProfile(d config.Destination, opts *Options) (*profile, error) {
	p, err := compile(d, opts)
	if err != nil {
		return nil, err
	}
	if p.tls, err = readTLS(d.TLS); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadDestination, d.Name, err)
	}
	if d.Agent != "" {
		return p, nil
	}
	tlsConf, err := p.tls.Config(nil)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadDestination, d.Name, err)
	}
	p.ep.client = newClient(p.set.timeout, p.set.concurrency, tlsConf)
	if d.FollowRedirects {
		p.ep.hops = newRedirector(p.set.timeout, p.set.concurrency, tlsConf, opts.guard)
	}
	return p, nil
}

// compile compiles d without a client.
func compile(d config.Destination, opts *Options) (*profile, error) {
	set := settingsFor(d)
	ep, err := newEndpoint(d, set, opts.Version)
	if err != nil {
		return nil, err
	}
	lease := opts.Lease
	if lease <= 0 {
		lease = set.timeout + opts.LeaseMargin
	}
	return &profile{cfg: d, set: set, ep: ep, lease: lease}, nil
}

func (p *profile) success(status int) bool {
	if p.set.success == nil {
		return status >= 200 && status < 300
	}
	return p.set.success[status]
}

// decide applies the destination's policy to one attempt's result. why is
// set when a failure is final.
func (p *profile) decide(opts *Options, d store.Delivery, res result, now time.Time) (o Outcome, due time.Time, why string) {
	if res.err == nil && p.success(res.status) {
		return OutcomeSuccess, time.Time{}, ""
	}
	n := d.Attempts + 1
	// The policy functions take what an HTTP client returns; a result
	// rebuilt from an agent's report makes the same response.
	var resp *http.Response
	if res.status != 0 || res.err == nil {
		resp = &http.Response{StatusCode: res.status, Header: res.header}
	}
	switch {
	case errors.Is(res.err, transform.ErrTransform):
		return OutcomeDead, time.Time{}, "not retried: the transform fails the same way every time"
	case errors.Is(res.err, ErrNoEvent) || !opts.retryable(resp, res.err):
		return OutcomeDead, time.Time{}, "not retryable"
	case n >= p.set.maxAttempts:
		return OutcomeDead, time.Time{}, fmt.Sprintf("gave up after max_attempts (%d)", p.set.maxAttempts)
	}
	due = now.Add(p.wait(opts, n, resp))
	if deadline := d.CreatedAt.Add(p.set.maxAge); due.After(deadline) {
		return OutcomeDead, time.Time{}, fmt.Sprintf("gave up: next attempt would pass max_age (%s)", p.set.maxAge)
	}
	return OutcomeRetry, due, ""
}

// wait is how long to wait after failed attempt n: Options.Backoff, or the
// schedule's entry when retry.schedule is set (scheduleBackoff).
func (p *profile) wait(opts *Options, n int, resp *http.Response) time.Duration {
	backoff := opts.Backoff
	if len(p.set.schedule) > 0 {
		backoff = scheduleBackoff(p.set.schedule)
	}
	return backoff(p.set.initial, p.set.maxInterval, n-1, resp)
}

// attemptRecord builds the stored record of one attempt and its outcome.
func (p *profile) attemptRecord(opts *Options, d store.Delivery, res result, now time.Time) (Outcome, store.Attempt, time.Time) {
	a := store.Attempt{
		N:        d.Attempts + 1,
		At:       now.Add(-res.took),
		Duration: res.took,
		Status:   res.status,
		// An agent reports the response and the error as text it chose:
		// the same caps as a worker's own apply before anything is stored
		// or logged.
		Response: truncateString(res.response, responseKeep),
	}
	outcome, due, why := p.decide(opts, d, res, now)
	if outcome != OutcomeSuccess {
		a.Error = truncateString(res.failure(p.set.successText).Error(), errorKeep)
		if why != "" {
			a.Error += "; " + why
		}
	}
	return outcome, a, due
}
