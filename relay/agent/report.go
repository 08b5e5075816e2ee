package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
)

// serveReport records the agent's outcomes, extends the leases it still
// holds, and answers which outcomes are done with and which leases are lost.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	name, ok := s.auth(w, r)
	if !ok {
		return
	}
	var req reportRequest
	if !decodeRequest(w, r, &req) {
		return
	}
	if len(req.Outcomes) > maxReportItems || len(req.Held) > maxReportItems {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "too many items in one report"})
		return
	}
	// An agent that hangs up mid-report must not leave outcomes half
	// recorded; it sends the report again and gets lease_lost for the ones
	// that were.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeCallTimeout)
	defer cancel()

	resp := reportResponse{
		Acks:        make([]string, len(req.Outcomes)),
		LeaseMS:     millis(s.opts.Lease),
		HeartbeatMS: millis(s.opts.heartbeat()),
	}
	lost := make([]bool, len(req.Held))
	tickets := make([]string, len(req.Outcomes))
	for i, o := range req.Outcomes {
		tickets[i] = o.Ticket
	}
	s.finished(name, tickets)
	sem := make(chan struct{}, recordParallel)
	var wg sync.WaitGroup
	for i, o := range req.Outcomes {
		wg.Add(1)
		if s.recordAsync(ctx, name, o, func(ack string) { resp.Acks[i] = ack; wg.Done() }) {
			continue
		}
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp.Acks[i] = s.record(ctx, name, o)
		}()
	}
	for i, tk := range req.Held {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			lost[i] = s.extend(ctx, name, tk)
		})
	}
	wg.Wait()
	for i, l := range lost {
		if l {
			resp.Lost = append(resp.Lost, i)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// finished stops counting deliveries whose attempts are over as in flight,
// and lets a held poll hand out more at once: concurrency counts attempts,
// as a local dispatcher starts attempts while earlier outcomes commit. Only
// leases this process handed to the agent count.
func (s *Server) finished(name string, tickets []string) {
	n := 0
	for _, raw := range tickets {
		t, err := decodeTicket(raw)
		if err != nil {
			continue
		}
		if h, ok := s.heldFor(t.ID); ok && h.agent == name && subtle.ConstantTimeCompare([]byte(h.token), []byte(t.Lease)) == 1 {
			s.untrack(h.dest, t.ID)
			n++
		}
	}
	if n > 0 {
		s.wakeAgent(name)
	}
}

// record applies the destination's policy to one reported outcome and
// writes it, returning the acknowledgement.
func (s *Server) record(ctx context.Context, name string, o outcome) string {
	dl, d, ack, ok := s.leaseOf(ctx, name, o.Ticket)
	if !ok {
		return ack
	}
	if o.Release || d == nil {
		return s.release(ctx, dl)
	}
	return s.settled(s.writeResult(ctx, d, dl, resultOf(o), true), dl)
}

// release gives dl back unattempted. A destination removed by a reload
// keeps its deliveries queued, not judged by a policy that no longer
// exists.
func (s *Server) release(ctx context.Context, dl store.Delivery) string {
	s.probeUnused(dl.Destination, dl.ID)
	return s.settled(s.ack(s.q.Release(ctx, dl, s.opts.Now()), ackReleased, dl), dl)
}

// settled forgets dl's lease once the store has answered for good, and
// returns ack.
func (s *Server) settled(ack string, dl store.Delivery) string {
	if ack != ackRetry {
		s.forget(dl.ID, dl.Lease)
	}
	return ack
}

// resultOf is a reported attempt as the delivery policy reads results.
func resultOf(o outcome) deliver.Result {
	res := deliver.Result{
		Status:      o.Status,
		Location:    o.Location,
		NotFollowed: o.NotFollowed,
		Response:    o.Response,
		Took:        time.Duration(o.DurationNS),
	}
	if o.RetryAfter != "" {
		res.Header = http.Header{"Retry-After": {o.RetryAfter}}
	}
	if o.Error != "" && o.Status == 0 {
		res.Err = &reportedError{msg: o.Error, final: o.Final}
	}
	return res
}

// recordAsync is record through a store that takes outcomes without a
// waiting caller (deliver.AsyncQueue; both stores do): a report then
// records its outcomes without a goroutine each, and done gets the
// acknowledgement, once, possibly from the store's goroutine. It reports
// false, having done nothing, for what record must handle (another store,
// a release, a destination no longer configured).
func (s *Server) recordAsync(ctx context.Context, name string, o outcome, done func(string)) bool {
	aq, ok := s.q.(deliver.AsyncQueue)
	if !ok || o.Release {
		return false
	}
	dl, d, ack, ok := s.leaseOf(ctx, name, o.Ticket)
	switch {
	case !ok:
		done(ack)
		return true
	case d == nil:
		done(s.release(ctx, dl))
		return true
	}
	now := s.opts.Now()
	outcome, a, due := d.remote.Outcome(dl, resultOf(o), now)
	s.feedCircuit(d, dl.ID, outcome, a.Error, now)
	deliver.WriteOutcomeAsync(ctx, aq, outcome, dl, a, due, func(err error) {
		done(s.settled(s.recorded(err, d, dl, outcome, a, due), dl))
	})
	return true
}

// writeResult writes the outcome of one attempt of dl, as a local worker
// would, and returns the acknowledgement. attempted says whether the result
// came from the receiver (an agent's report), so that it feeds the circuit
// breaker, like a worker's, before it is written.
func (s *Server) writeResult(ctx context.Context, d *destination, dl store.Delivery, res deliver.Result, attempted bool) string {
	now := s.opts.Now()
	outcome, a, due := d.remote.Outcome(dl, res, now)
	if attempted {
		s.feedCircuit(d, dl.ID, outcome, a.Error, now)
	}
	err := deliver.WriteOutcome(ctx, s.q, outcome, dl, a, due)
	return s.recorded(err, d, dl, outcome, a, due)
}

// recorded logs and counts an outcome written with err and returns its
// acknowledgement.
func (s *Server) recorded(err error, d *destination, dl store.Delivery, outcome deliver.Outcome, a store.Attempt, due time.Time) string {
	ack := s.ack(err, string(outcome), dl)
	if ack != string(outcome) {
		return ack
	}
	log := s.log.With("agent", d.agent, "destination", d.name, "delivery", dl.ID, "attempt", a.N, "status", a.Status)
	switch outcome {
	case deliver.OutcomeSuccess:
		log.Debug("agent: delivered", "took", a.Duration)
	case deliver.OutcomeRetry:
		log.Info("agent: attempt failed; retry scheduled", "error", a.Error, "due", due)
	default:
		log.Warn("agent: dead-lettered", "error", a.Error)
	}
	if s.opts.OnAttempt != nil {
		s.opts.OnAttempt(d.name, outcome, a.Status, a.Duration)
	}
	if s.opts.OnResult != nil {
		s.opts.OnResult(dl, a, outcome)
	}
	return ack
}

// ack maps a store write's error to an acknowledgement: done is the answer
// for success; a lost lease means another holder (or an earlier copy of this
// report) settled it; anything else asks the agent to report again.
func (s *Server) ack(err error, done string, dl store.Delivery) string {
	switch {
	case err == nil:
		return done
	case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrNotFound):
		return ackLeaseLost
	}
	s.log.Warn("agent: recording an outcome failed; the agent will report it again", "delivery", dl.ID, "error", err)
	return ackRetry
}

// extend pushes a held ticket's lease out by a lease period and reports
// whether the lease is lost. Other failures leave the lease to run and are
// tried again at the next heartbeat.
func (s *Server) extend(ctx context.Context, name, raw string) (lost bool) {
	dl, d, ack, ok := s.leaseOf(ctx, name, raw)
	if !ok {
		return ack != ackRetry
	}
	if d == nil {
		return true
	}
	at := s.opts.Now()
	err := s.q.ExtendLease(ctx, dl, s.opts.Lease)
	switch {
	case err == nil:
		s.touch(d.name, dl.ID, at.Add(s.opts.Lease))
		s.touchProbe(d.name, dl.ID, at.Add(s.opts.Lease))
		s.extendHeld(dl.ID, dl.Lease, at.Add(s.opts.Lease))
		return false
	case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrNotFound):
		s.untrack(d.name, dl.ID)
		s.probeUnused(d.name, dl.ID)
		s.forget(dl.ID, dl.Lease)
		return true
	}
	s.log.Warn("agent: extending a lease failed; will try at the next heartbeat", "delivery", dl.ID, "error", err)
	return false
}
