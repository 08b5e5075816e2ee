package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/transform"
)

// Pipeline is one destination's delivery pipeline, whoever makes the HTTP
// attempt: its compiled settings, its circuit breaker, and the one way an
// attempt is settled. The Manager keeps one per destination: a direct
// destination's dispatcher works through it, and the agent server uses an
// agent destination's (Manager.Pipeline), only carrying deliveries to the
// agent and results back. So both follow
// the same policy, feed the same breaker, count and log the same way, and
// write outcomes the same way. It is safe for concurrent use.
type Pipeline struct {
	name  string
	agent string // the agent that attempts, or "" for this relay's workers
	q     Queue
	opts  *Options
	log   *slog.Logger
	prof  atomic.Pointer[profile]
	cb    *circuit
	// limiter is the destination's rate_limit, shared by its profiles so
	// that a reload keeps its pace.
	limiter *rate.Limiter
}

func newPipeline(q Queue, d config.Destination, opts *Options) (*Pipeline, error) {
	p, err := newProfile(d, opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("destination", d.Name)
	if d.Agent != "" {
		log = log.With("agent", d.Agent)
	}
	pl := &Pipeline{name: d.Name, agent: d.Agent, q: q, opts: opts, log: log, limiter: rate.NewLimiter(limitOf(p.set.rateLimit), 1)}
	pl.cb = newCircuit(d.Name, p.set.circuit, log, opts.OnCircuit)
	pl.prof.Store(p)
	pl.warnInsecure(p)
	return pl, nil
}

func (pl *Pipeline) profile() *profile { return pl.prof.Load() }

// apply switches to a new profile (a config reload), keeping the circuit's
// state, and returns the old one. Attempts in flight keep the old profile.
func (pl *Pipeline) apply(p *profile) *profile {
	old := pl.prof.Swap(p)
	pl.limiter.SetLimit(limitOf(p.set.rateLimit))
	pl.cb.notify(pl.cb.br.configure(p.set.circuit))
	pl.warnInsecure(p)
	return old
}

func (pl *Pipeline) warnInsecure(p *profile) {
	if p.ep.insecure {
		pl.log.Warn("deliver: TLS certificate checks are off for this destination (tls.insecure_skip_verify)")
	}
}

// Admit reports whether deliveries may be leased now: ok false means none
// (the circuit is open, or its probe is out); probe true means exactly one,
// the probe, which must then be settled: by Settle with probe set, or by
// ProbeUnused when it was not attempted (nothing was due, it was released,
// its lease ran out unreported). Until then nothing else is admitted.
func (pl *Pipeline) Admit(now time.Time) (ok, probe bool) {
	a, _, tr := pl.cb.br.admit(now)
	pl.cb.notify(tr)
	return a != admitNone, a == admitProbe
}

// ProbeUnused gives back the probe's turn without an attempt, so the next
// Admit hands out another probe.
func (pl *Pipeline) ProbeUnused() { pl.cb.ProbeUnused() }

// ProbeNow ends an open circuit's cooldown so the next Admit hands out a
// probe: an operator replayed deliveries of the destination.
func (pl *Pipeline) ProbeNow(now time.Time) bool { return pl.cb.ProbeNow(now) }

// Concurrency returns how many attempts of the destination may run at once.
func (pl *Pipeline) Concurrency() int { return pl.profile().set.concurrency }

// limitOf is a rate_limit as a rate.Limit. A burst of one spreads
// deliveries evenly instead of letting a backlog out in a rush after an
// outage.
func limitOf(perSecond float64) rate.Limit {
	if perSecond <= 0 {
		return rate.Inf
	}
	return rate.Limit(perSecond)
}

// RateRoom returns how many of want deliveries the destination's rate_limit
// lets out now, for someone who hands them out in batches (an agent's
// poll); RateSpend counts those handed out.
func (pl *Pipeline) RateRoom(want int) int {
	if pl.profile().set.rateLimit <= 0 {
		return want
	}
	return min(want, int(pl.limiter.Tokens()))
}

// RateSpend counts n deliveries handed out against the rate_limit.
func (pl *Pipeline) RateSpend(n int) {
	if n > 0 && pl.profile().set.rateLimit > 0 {
		pl.limiter.ReserveN(time.Now(), n)
	}
}

// State returns the destination's live state as far as delivery knows it:
// its circuit and the last results. InFlight is the Manager's to add.
func (pl *Pipeline) State() state.Destination {
	v := pl.cb.br.view()
	return state.Destination{
		Name:                pl.name,
		Agent:               pl.agent,
		Circuit:             v.state,
		ConsecutiveFailures: v.failures,
		LastSuccess:         v.lastSuccess,
		LastFailure:         v.lastFailure,
		LastError:           v.lastError,
	}
}

// Request is one attempt as the relay builds it for someone else to send:
// everything but the connection. The signing secret never leaves the relay.
type Request struct {
	URL             string
	Host            string // Host header override, or ""
	Header          http.Header
	Body            []byte
	Timeout         time.Duration
	Concurrency     int
	Success         []int // success_status; empty means any 2xx
	FollowRedirects bool
	TLS             TLS
}

// Assign builds the request of d's next attempt for an agent, signed at
// now: the event's body as it is, or the destination's transform of it.
// A delivery that must not be attempted gets an error instead, which
// Settle, given as a Result's Err, records without feeding the breaker:
// its event body is gone (ErrNoEvent), it waited past max_age for an agent
// to take it, or the transform failed (transform.ErrTransform).
func (pl *Pipeline) Assign(ctx context.Context, d store.Delivery, now time.Time) (Request, error) {
	p := pl.profile()
	switch {
	case d.Event == nil:
		return Request{}, fmt.Errorf("%w (event %s)", ErrNoEvent, d.EventID)
	case now.Sub(d.CreatedAt) > p.set.maxAge:
		return Request{}, staleError{maxAge: p.set.maxAge}
	}
	header, body, err := p.ep.prepare(ctx, d, now)
	if err != nil {
		return Request{}, err
	}
	return Request{
		URL: p.cfg.URL, Host: p.ep.host, Header: header, Body: body,
		Timeout: p.set.timeout, Concurrency: p.set.concurrency, Success: p.cfg.SuccessStatus,
		FollowRedirects: p.ep.follow, TLS: p.tls,
	}, nil
}

// staleError is a delivery that waited longer than its max_age for an agent
// to take it: not sent days late, but dead-lettered unattempted.
type staleError struct{ maxAge time.Duration }

func (e staleError) Error() string {
	return fmt.Sprintf("not attempted: max_age (%s) passed before an agent took the delivery", e.maxAge)
}

// receiverAnswered reports whether a result is the receiver's doing, which
// feeds the circuit breaker: not a missing body, a failed transform or a
// delivery too old to send, which fail the same whatever the receiver does.
func receiverAnswered(err error) bool {
	var stale staleError
	return err == nil || !(errors.Is(err, ErrNoEvent) || errors.Is(err, transform.ErrTransform) || errors.As(err, &stale))
}

// Settle settles one attempt of d (or a delivery Assign refused) made by
// someone else, in the order judge gives, except that the circuit
// breaker, OnAttempt, OnResult and the log line wait until the store took
// the outcome: a report sent again because its answer was lost reaches the
// store as a lost lease and is not counted, shown, logged or held against
// the receiver a second time; a probe whose outcome the store refused
// gives its turn back. done gets the outcome and the store's answer, once,
// possibly on the store's goroutine:
// store.ErrLeaseLost when the lease was lost (another holder, or an
// earlier copy of the same report, settled it), any other error when the
// store failed and the result should be settled again. probe says whether
// d was the circuit's probe.
func (pl *Pipeline) Settle(ctx context.Context, d store.Delivery, res Result, probe bool, done func(Outcome, error)) {
	r := res.internal()
	now := pl.opts.Clock.Now()
	s := pl.decide(pl.profile(), d, r, now)
	pl.q.Settle(ctx, d, s.Settlement, func(err error) {
		if err == nil {
			pl.feed(s, r, probe, now)
			pl.report(d, s, r)
		} else if probe {
			pl.cb.ProbeUnused()
		}
		done(s.outcome, err)
	})
}

// settlement is one attempt judged: what to write, and its outcome as
// the hooks name it.
type settlement struct {
	outcome Outcome
	store.Settlement
}

// judge settles one result of d under p, the profile its attempt was made
// with, at now, the moment it ended: decide, feed the breaker, report.
// Writing it is the caller's next step: a local attempt is made once per
// lease, so its result is counted before the write, as soon as it is known.
func (pl *Pipeline) judge(p *profile, d store.Delivery, res result, probe bool, now time.Time) settlement {
	s := pl.decide(p, d, res, now)
	pl.feed(s, res, probe, now)
	pl.report(d, s, res)
	return s
}

// feed gives the circuit breaker a result the receiver gave; any other
// result gives the probe's turn back.
func (pl *Pipeline) feed(s settlement, res result, probe bool, now time.Time) {
	if receiverAnswered(res.err) {
		pl.cb.Record(s.outcome == OutcomeSuccess, probe, now, s.Attempt.Error)
	} else if probe {
		pl.cb.ProbeUnused()
	}
}

// decide applies the destination's policy to one result of d
// (attemptRecord).
func (pl *Pipeline) decide(p *profile, d store.Delivery, res result, now time.Time) settlement {
	outcome, a, due := p.attemptRecord(pl.opts, d, res, now)
	state := store.StateDelivered
	switch outcome {
	case OutcomeRetry:
		state = store.StatePending
	case OutcomeDead:
		state = store.StateDead
	}
	return settlement{outcome: outcome, Settlement: store.Settlement{State: state, Attempt: a, Due: due}}
}

// report hands a decided result to OnAttempt and OnResult and logs it.
func (pl *Pipeline) report(d store.Delivery, s settlement, res result) {
	if pl.opts.OnAttempt != nil {
		pl.opts.OnAttempt(pl.name, s.outcome, res.status, res.took)
	}
	if pl.opts.OnResult != nil {
		pl.opts.OnResult(d, s.Attempt, s.outcome)
	}
	pl.logOutcome(d, s.outcome, s.Attempt, s.Due, res.err)
}

// logOutcome logs one decided attempt; err is the attempt's error, if any.
func (pl *Pipeline) logOutcome(d store.Delivery, outcome Outcome, a store.Attempt, due time.Time, err error) {
	level, msg := slog.LevelInfo, "deliver: delivered"
	switch outcome {
	case OutcomeRetry:
		level, msg = slog.LevelInfo, "deliver: attempt failed; retry scheduled"
	case OutcomeDead:
		level, msg = slog.LevelWarn, "deliver: dead-lettered"
	}
	if !pl.log.Enabled(context.Background(), level) {
		return
	}
	if outcome == OutcomeSuccess && pl.opts.LogSample != nil && !pl.opts.LogSample() {
		return
	}
	args := []any{"delivery", d.ID, "event_id", d.EventID, "attempt", a.N, "status", a.Status, "took", a.Duration}
	if a.Error != "" {
		// Without what a failed transform's jq error quoted from the body;
		// the attempt record keeps it.
		args = append(args, "error", transform.QuietIn(a.Error, err))
	}
	if outcome == OutcomeRetry {
		args = append(args, "due", due)
	}
	pl.log.Log(context.Background(), level, msg, args...)
}

// TLS is a destination's tls settings in a form that can cross a wire: the
// PEM of its ca_file, read on the relay, and insecure_skip_verify. An agent
// destination's go to the agent, which verifies the receiver with them.
type TLS struct {
	CAPEM              []byte
	InsecureSkipVerify bool
}

// readTLS reads t's ca_file and checks that it holds a certificate.
func readTLS(t config.TLS) (TLS, error) {
	out := TLS{InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile == "" {
		return out, nil
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return out, fmt.Errorf("tls.ca_file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return out, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
	}
	out.CAPEM = pem
	return out, nil
}

// Config returns the client TLS settings for t: roots (nil: the system's)
// plus CAPEM, so a receiver that moves to a public certificate keeps
// working. It returns nil, Go's defaults, when nothing is set.
func (t TLS) Config(roots *x509.CertPool) (*tls.Config, error) {
	if len(t.CAPEM) == 0 && !t.InsecureSkipVerify && roots == nil {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, InsecureSkipVerify: t.InsecureSkipVerify}
	if len(t.CAPEM) > 0 {
		var pool *x509.CertPool
		if roots != nil {
			pool = roots.Clone()
		} else if sys, err := x509.SystemCertPool(); err == nil {
			pool = sys
		} else {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, errors.New("tls: the destination's CA holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	return conf, nil
}
