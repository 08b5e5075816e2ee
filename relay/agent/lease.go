package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
)

// serveLease holds the poll until it has deliveries for the agent, the wait
// is over, the agent goes away or the relay shuts down.
func (s *Server) serveLease(w http.ResponseWriter, r *http.Request) {
	name, ok := s.auth(w, r)
	if !ok {
		return
	}
	var req leaseRequest
	if !decodeRequest(w, r, &req) {
		return
	}
	if len(req.Finished) > maxReportItems {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "too many items in one poll"})
		return
	}
	s.finished(name, req.Finished)
	if s.closed() {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "relay is shutting down"})
		return
	}
	n := min(max(req.Max, 1), maxLeaseBatch)
	wait := min(max(fromMillis(req.WaitMS), 0), s.opts.PollWait)
	// The listener's read and write timeouts are sized for callbacks; a
	// held poll needs longer. A writer without deadlines (a test recorder)
	// just keeps the server's.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(wait + deadlineGrace))
	_ = rc.SetWriteDeadline(time.Now().Add(wait + deadlineGrace))

	resp := leaseResponse{LeaseMS: millis(s.opts.Lease), HeartbeatMS: millis(s.opts.heartbeat())}
	resp.Deliveries, resp.TLS = s.poll(r.Context(), name, n, wait)
	if resp.Deliveries == nil {
		resp.Deliveries = []assignment{}
	}
	for _, a := range resp.Deliveries {
		s.log.Debug("agent: handed out", "agent", name, "destination", a.Destination, "delivery", a.ID, "attempt", a.Attempt)
	}
	if r.Context().Err() != nil {
		// The agent is gone: hand the deliveries back now rather than when
		// their leases expire.
		s.giveBack(resp.Deliveries)
		return
	}
	if err := writeJSON(w, http.StatusOK, resp); err != nil {
		// Only a failed write proves the agent did not get them: once the
		// answer is out, the agent may hang up at any moment. A write that
		// seemed to succeed but never arrived is covered by the lease.
		s.giveBack(resp.Deliveries)
	}
}

// poll takes up to n deliveries for the agent, waiting up to wait for some,
// with the tls settings of their destinations that have any.
func (s *Server) poll(ctx context.Context, name string, n int, wait time.Duration) ([]assignment, map[string]wireTLS) {
	deadline := time.Now().Add(wait)
	for {
		// Take the wake channel before looking, so a wake-up between the
		// look and the wait is not lost.
		wake := s.wakeChan(name)
		if out, tls := s.take(ctx, name, n); len(out) > 0 {
			return out, tls
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		t := time.NewTimer(min(left, s.opts.PollInterval))
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		case <-s.quit:
		}
		t.Stop()
		if ctx.Err() != nil || s.closed() {
			return nil, nil
		}
	}
}

// take leases up to n due deliveries from the agent's destinations, starting
// at a different destination each time so a busy one cannot starve the rest,
// within each destination's concurrency and rate limit, and as its circuit
// breaker allows: nothing while it is open, one probe when it is half-open.
func (s *Server) take(ctx context.Context, name string, n int) (out []assignment, tlsOf map[string]wireTLS) {
	dests := s.tbl.Load().byAgent[name]
	if len(dests) == 0 {
		return nil, nil
	}
	start := int(s.rot.Add(1) % uint64(len(dests)))
	for i := range dests {
		if len(out) >= n {
			break
		}
		d := dests[(start+i)%len(dests)]
		pipe := s.pipes.Pipeline(d.name)
		if pipe == nil {
			continue // removed by a reload under way
		}
		room := s.room(d, pipe, n-len(out))
		if room == 0 {
			continue
		}
		admitted, probe := s.admit(d, pipe)
		if !admitted {
			continue
		}
		if probe {
			room = 1
		}
		got, err := s.q.Lease(ctx, d.name, room, s.opts.Lease)
		if probe && len(got) == 0 {
			pipe.ProbeUnused()
		}
		if err != nil {
			if ctx.Err() == nil && !s.storeFailing.Swap(true) {
				s.log.Error("agent: lease failed; agents get nothing until the store answers", "destination", d.name, "error", err)
			}
			continue
		}
		if s.storeFailing.Swap(false) {
			s.log.Info("agent: store answers again")
		}
		pipe.RateSpend(len(got))
		for _, dl := range got {
			a, tls, ok := s.assign(d, pipe, dl, probe)
			if !ok {
				continue
			}
			out = append(out, a)
			if _, seen := tlsOf[d.name]; !seen && (len(tls.CAPEM) > 0 || tls.InsecureSkipVerify) {
				if tlsOf == nil {
					tlsOf = map[string]wireTLS{}
				}
				tlsOf[d.name] = wireTLS{CAPEM: string(tls.CAPEM), InsecureSkipVerify: tls.InsecureSkipVerify}
			}
		}
	}
	return out, tlsOf
}

// room is how many deliveries of d may be handed out now: what its rate
// limit allows, and what its held bound (holdFactor times its concurrency)
// leaves free in this process. Agents run at most its concurrency at once.
func (s *Server) room(d *destination, pipe *deliver.Pipeline, want int) int {
	n := min(want, holdFactor*pipe.Concurrency()-s.inFlight(d.name))
	return max(pipe.RateRoom(n), 0)
}

// assign turns a leased delivery into the agent's assignment, with the
// request its pipeline builds (a transform runs here, on the relay: the
// agent sends what it is given). A delivery that must not be attempted
// (its event body is gone, it waited past max_age for an agent, its
// transform fails) is settled here instead, through the same pipeline,
// which dead-letters it without feeding the circuit breaker; a probe that
// ends so gives its turn back.
func (s *Server) assign(d *destination, pipe *deliver.Pipeline, dl store.Delivery, probe bool) (assignment, deliver.TLS, bool) {
	now := s.opts.Clock.Now()
	req, err := pipe.Assign(context.Background(), dl, now)
	if err != nil {
		ctx, cancel := context.WithTimeout(store.Awaiting(context.Background()), storeCallTimeout)
		defer cancel()
		written := make(chan struct{})
		pipe.Settle(ctx, dl, deliver.Result{Err: err}, probe, func(_ deliver.Outcome, err error) {
			if err != nil && !errors.Is(err, store.ErrLeaseLost) {
				s.log.Warn("agent: recording an unattempted delivery failed; it is due again when its lease expires", "delivery", dl.ID, "error", err)
			}
			close(written)
		})
		<-written
		return assignment{}, deliver.TLS{}, false
	}
	s.track(d.name, dl.ID, now.Add(s.opts.Lease))
	s.hold(dl, d.agent, now.Add(s.opts.Lease))
	if probe {
		s.holdProbe(d, pipe, dl.ID, now.Add(s.opts.Lease))
	}
	return assignment{
		Ticket:          newTicket(dl).encode(),
		ID:              dl.ID,
		Destination:     d.name,
		Attempt:         dl.Attempts + 1,
		URL:             req.URL,
		Host:            req.Host,
		Header:          req.Header,
		Body:            req.Body,
		TimeoutMS:       millis(req.Timeout),
		Concurrency:     req.Concurrency,
		SuccessStatus:   req.Success,
		FollowRedirects: req.FollowRedirects,
	}, req.TLS, true
}

// giveBack releases assignments that never reached their agent, due now.
func (s *Server) giveBack(out []assignment) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	for _, a := range out {
		t, err := decodeTicket(a.Ticket)
		if err != nil {
			continue
		}
		s.untrack(t.Destination, t.ID)
		s.probeUnused(t.Destination, t.ID)
		s.forget(t.ID, t.Lease)
		s.log.Debug("agent: the agent went away before its poll was answered; releasing", "delivery", t.ID)
		if err := s.q.Release(ctx, t.delivery(), s.opts.Clock.Now()); err != nil {
			s.log.Warn("agent: release of an undelivered assignment failed; it is due again when its lease expires",
				"delivery", t.ID, "error", err)
		}
	}
}

// track records that delivery id of dest is held by an agent until expiry.
func (s *Server) track(dest, id string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.flights[dest]
	if m == nil {
		m = map[string]time.Time{}
		s.flights[dest] = m
	}
	m[id] = expiry
}

// touch moves a tracked delivery's expiry. An extension that crosses the
// delivery's outcome in flight must not count it again.
func (s *Server) touch(dest, id string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.flights[dest][id]; ok {
		s.flights[dest][id] = expiry
	}
}

func (s *Server) untrack(dest, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.flights[dest], id)
}

// inFlight counts dest's live handed-out deliveries, forgetting expired ones.
func (s *Server) inFlight(dest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock.Now()
	m := s.flights[dest]
	for id, exp := range m {
		if !now.Before(exp) {
			delete(m, id)
		}
	}
	return len(m)
}
