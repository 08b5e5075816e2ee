package agent

import (
	"context"
	"fmt"
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

	jobs := s.poll(r.Context(), name, n, wait)
	resp := leaseResponse{Deliveries: jobs, LeaseMS: millis(s.opts.Lease), HeartbeatMS: millis(s.opts.heartbeat())}
	if resp.Deliveries == nil {
		resp.Deliveries = []job{}
	}
	for _, j := range jobs {
		s.log.Debug("agent: handed out", "agent", name, "destination", j.Destination, "delivery", j.ID, "attempt", j.Attempt)
	}
	if r.Context().Err() != nil {
		// The agent is gone: hand the deliveries back now rather than when
		// their leases expire.
		s.giveBack(jobs)
		return
	}
	if err := writeJSON(w, http.StatusOK, resp); err != nil {
		// Only a failed write proves the agent did not get them: once the
		// answer is out, the agent may hang up at any moment. A write that
		// seemed to succeed but never arrived is covered by the lease.
		s.giveBack(jobs)
	}
}

// poll takes up to n deliveries for the agent, waiting up to wait for some.
func (s *Server) poll(ctx context.Context, name string, n int, wait time.Duration) []job {
	deadline := time.Now().Add(wait)
	for {
		// Take the wake channel before looking, so a wake-up between the
		// look and the wait is not lost.
		wake := s.wakeChan(name)
		if jobs := s.take(ctx, name, n); len(jobs) > 0 {
			return jobs
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
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
			return nil
		}
	}
}

// take leases up to n due deliveries from the agent's destinations, starting
// at a different destination each time so a busy one cannot starve the rest,
// within each destination's concurrency and rate limit, and as its circuit
// breaker allows: nothing while it is open, one probe when it is half-open.
func (s *Server) take(ctx context.Context, name string, n int) []job {
	dests := s.tbl.Load().byAgent[name]
	if len(dests) == 0 {
		return nil
	}
	start := int(s.rot.Add(1) % uint64(len(dests)))
	var out []job
	for i := range dests {
		if len(out) >= n {
			break
		}
		d := dests[(start+i)%len(dests)]
		room := s.room(d, n-len(out))
		if room == 0 {
			continue
		}
		admitted, probe := s.admit(d)
		if !admitted {
			continue
		}
		if probe {
			room = 1
		}
		got, err := s.q.Lease(ctx, d.name, room, s.opts.Lease)
		if probe && len(got) == 0 {
			d.circuit.ProbeUnused()
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
		if d.limiter != nil && len(got) > 0 {
			d.limiter.ReserveN(time.Now(), len(got))
		}
		for _, dl := range got {
			if j, ok := s.jobFor(d, dl, probe); ok {
				out = append(out, j)
			}
		}
	}
	return out
}

// room is how many deliveries of d may be handed out now: what its rate
// limit allows, and what its held bound (holdFactor times its concurrency)
// leaves free in this process. Agents run at most its concurrency at once.
func (s *Server) room(d *destination, want int) int {
	n := min(want, holdFactor*d.remote.Concurrency()-s.inFlight(d.name))
	if d.limiter != nil {
		n = min(n, int(d.limiter.Tokens()))
	}
	return max(n, 0)
}

// jobFor turns a leased delivery into a job. A delivery whose event body is
// gone cannot be attempted by anyone, and one that waited past max_age for
// an agent is not wanted any more: both go to the dead-letter queue here,
// through the destination's policy, from where an operator can replay them.
// Neither is the receiver's failure, so neither feeds the circuit breaker;
// a probe that ends so gives its turn back.
func (s *Server) jobFor(d *destination, dl store.Delivery, probe bool) (job, bool) {
	now := s.opts.Now()
	var res deliver.Result
	switch {
	case dl.Event == nil:
		res.Err = fmt.Errorf("%w (event %s)", deliver.ErrNoEvent, dl.EventID)
	case now.Sub(dl.CreatedAt) > d.maxAge:
		res.Err = fmt.Errorf("not attempted: max_age (%s) passed before an agent took the delivery", d.maxAge)
	}
	var header http.Header
	var body []byte
	if res.Err == nil {
		// A transform runs here, on the relay: the agent sends what it is given.
		header, body, res.Err = d.remote.Prepare(context.Background(), dl, now)
	}
	if res.Err != nil {
		if probe {
			d.circuit.ProbeUnused()
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		defer cancel()
		s.writeResult(ctx, d, dl, res, false)
		return job{}, false
	}
	s.track(d.name, dl.ID, now.Add(s.opts.Lease))
	s.hold(dl, d.agent, now.Add(s.opts.Lease))
	if probe {
		s.holdProbe(d, dl.ID, now.Add(s.opts.Lease))
	}
	return job{
		Ticket:          newTicket(dl).encode(),
		ID:              dl.ID,
		Destination:     d.name,
		Attempt:         dl.Attempts + 1,
		URL:             d.url,
		Host:            d.remote.Host(),
		Header:          header,
		Body:            body,
		TimeoutMS:       millis(d.remote.Timeout()),
		Concurrency:     d.remote.Concurrency(),
		SuccessStatus:   d.success,
		FollowRedirects: d.remote.FollowRedirects(),
	}, true
}

// giveBack releases jobs that never reached their agent, due now.
func (s *Server) giveBack(jobs []job) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	for _, j := range jobs {
		t, err := decodeTicket(j.Ticket)
		if err != nil {
			continue
		}
		s.untrack(t.Destination, t.ID)
		s.probeUnused(t.Destination, t.ID)
		s.forget(t.ID, t.Lease)
		s.log.Debug("agent: the agent went away before its poll was answered; releasing", "delivery", t.ID)
		if err := s.q.Release(ctx, t.delivery(), s.opts.Now()); err != nil {
			s.log.Warn("agent: release of an undelivered job failed; it is due again when its lease expires",
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
	now := s.opts.Now()
	m := s.flights[dest]
	for id, exp := range m {
		if !now.Before(exp) {
			delete(m, id)
		}
	}
	return len(m)
}
