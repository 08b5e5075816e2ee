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

// serveReport settles the agent's reports, extends the leases it still
// holds, and answers which reports are done with and which leases are lost.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	name, ok := s.auth(w, r)
	if !ok {
		return
	}
	var req reportRequest
	if !decodeRequest(w, r, &req) {
		return
	}
	if len(req.Reports) > maxReportItems || len(req.Held) > maxReportItems {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "too many items in one report"})
		return
	}
	// An agent that hangs up mid-report must not leave reports half
	// recorded; it sends the report again and gets lease_lost for the ones
	// that were. The agent waits for the answer, so the store must not hold
	// its outcomes back as it does those nobody waits for (store.Awaiting).
	ctx, cancel := context.WithTimeout(store.Awaiting(context.WithoutCancel(r.Context())), storeCallTimeout)
	defer cancel()

	resp := reportResponse{
		Acks:        make([]string, len(req.Reports)),
		LeaseMS:     millis(s.opts.Lease),
		HeartbeatMS: millis(s.opts.heartbeat()),
	}
	lost := make([]bool, len(req.Held))
	tickets := make([]string, len(req.Reports))
	for i, rep := range req.Reports {
		tickets[i] = rep.Ticket
	}
	s.finished(name, tickets)
	var wg sync.WaitGroup
	sem := make(chan struct{}, waitParallel)
	for i, rep := range req.Reports {
		wg.Add(1)
		done := func(ack string) { resp.Acks[i] = ack; wg.Done() }
		if !rep.Release {
			s.record(ctx, name, rep, done)
			continue
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			s.record(ctx, name, rep, done)
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

// record hands one report to its destination's pipeline, which settles it
// as it settles a local worker's attempt, and gives done the
// acknowledgement, once, possibly from the store's goroutine. A release,
// or a report for a destination no longer served by an agent, gives the
// delivery back instead.
func (s *Server) record(ctx context.Context, name string, rep report, done func(string)) {
	dl, d, ack, ok := s.leaseOf(ctx, name, rep.Ticket)
	if !ok {
		done(ack)
		return
	}
	var pipe *deliver.Pipeline
	if d != nil {
		pipe = s.pipes.Pipeline(d.name)
	}
	if rep.Release || pipe == nil {
		done(s.release(ctx, dl))
		return
	}
	_, probe := s.takeProbe(d.name, dl.ID)
	pipe.Settle(ctx, dl, resultOf(rep), probe, func(o deliver.Outcome, err error) {
		done(s.settled(s.ack(err, string(o), dl), dl))
	})
}

// release gives dl back unattempted. A destination removed by a reload
// keeps its deliveries queued, not judged by a policy that no longer
// exists.
func (s *Server) release(ctx context.Context, dl store.Delivery) string {
	s.probeUnused(dl.Destination, dl.ID)
	return s.settled(s.ack(s.q.Release(ctx, dl, s.opts.Clock.Now()), ackReleased, dl), dl)
}

// settled forgets dl's lease once the store has answered for good, and
// returns ack.
func (s *Server) settled(ack string, dl store.Delivery) string {
	if ack != ackRetry {
		s.forget(dl.ID, dl.Lease)
	}
	return ack
}

// resultOf is a reported attempt as the delivery pipeline reads results.
func resultOf(rep report) deliver.Result {
	res := deliver.Result{
		Status:      rep.Status,
		Location:    rep.Location,
		NotFollowed: rep.NotFollowed,
		Response:    rep.Response,
		Took:        time.Duration(rep.DurationNS),
	}
	if rep.RetryAfter != "" {
		res.Header = http.Header{"Retry-After": {rep.RetryAfter}}
	}
	if rep.Error != "" && rep.Status == 0 {
		res.Err, res.Final = errors.New(rep.Error), rep.Final
	}
	return res
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
	at := s.opts.Clock.Now()
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
