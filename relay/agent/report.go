package agent

import (
	"context"
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
// as a local dispatcher starts attempts while earlier outcomes commit.
func (s *Server) finished(name string, tickets []string) {
	n := 0
	for _, raw := range tickets {
		if t, err := decodeTicket(raw); err == nil {
			if d := s.tbl.Load().byName[t.Destination]; d != nil && d.agent == name {
				s.untrack(d.name, t.ID)
				n++
			}
		}
	}
	if n > 0 {
		s.wakeAgent(name)
	}
}

// ticketFor reads a ticket and checks that it belongs to one of the agent's
// destinations. dest is nil when the destination is no longer configured.
func (s *Server) ticketFor(name, raw string) (t ticket, dest *destination, ok bool) {
	t, err := decodeTicket(raw)
	if err != nil {
		s.log.Warn("agent: unreadable ticket", "agent", name)
		return t, nil, false
	}
	dest = s.tbl.Load().byName[t.Destination]
	if dest != nil && dest.agent != name {
		s.log.Warn("agent: ticket for another agent's destination refused", "agent", name, "destination", t.Destination)
		return t, nil, false
	}
	return t, dest, true
}

// record applies the destination's policy to one reported outcome and
// writes it, returning the acknowledgement.
func (s *Server) record(ctx context.Context, name string, o outcome) string {
	t, d, ok := s.ticketFor(name, o.Ticket)
	if !ok {
		return ackInvalid
	}
	dl := t.delivery()
	if o.Release || d == nil {
		// A destination removed by a reload keeps its deliveries queued,
		// not judged by a policy that no longer exists.
		s.probeUnused(t.Destination, t.ID)
		return s.ack(s.q.Release(ctx, dl, s.opts.Now()), ackReleased, dl)
	}
	return s.writeResult(ctx, d, dl, resultOf(o), true)
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
	t, d, ok := s.ticketFor(name, o.Ticket)
	if !ok {
		done(ackInvalid)
		return true
	}
	if d == nil {
		return false
	}
	dl := t.delivery()
	now := s.opts.Now()
	outcome, a, due := d.remote.Outcome(dl, resultOf(o), now)
	s.feedCircuit(d, dl.ID, outcome, a.Error, now)
	deliver.WriteOutcomeAsync(ctx, aq, outcome, dl, a, due, func(err error) {
		done(s.recorded(err, d, dl, outcome, a, due))
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
	t, d, ok := s.ticketFor(name, raw)
	if !ok || d == nil {
		return true
	}
	at := s.opts.Now()
	err := s.q.ExtendLease(ctx, t.delivery(), s.opts.Lease)
	switch {
	case err == nil:
		s.touch(d.name, t.ID, at.Add(s.opts.Lease))
		s.touchProbe(d.name, t.ID, at.Add(s.opts.Lease))
		return false
	case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrNotFound):
		s.untrack(d.name, t.ID)
		s.probeUnused(d.name, t.ID)
		return true
	}
	s.log.Warn("agent: extending a lease failed; will try at the next heartbeat", "delivery", t.ID, "error", err)
	return false
}
