package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// An agent is other people's software, and a ticket is what it sends back:
// the relay believes only the delivery id and the lease token in it. The
// destination, the attempt number and the creation time, which the retry
// policy reads, come from the relay's own record of the lease (held), or,
// for a lease another relay process handed out or this one forgot in a
// restart, from the store; the store checks the token when the outcome is
// written. An outcome is accepted only from the agent name that serves the
// delivery's destination.

// held is the relay's record of one lease handed to an agent.
type held struct {
	token     string
	dest      string
	agent     string
	eventID   string
	attempts  int
	createdAt time.Time
	expiry    time.Time
}

// hold remembers a lease handed to agent until expiry, forgetting expired
// ones now and then so that leases never reported do not pile up.
func (s *Server) hold(dl store.Delivery, agent string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock.Now()
	if now.After(s.nextSweep) {
		for id, h := range s.held {
			if now.After(h.expiry) {
				delete(s.held, id)
			}
		}
		s.nextSweep = now.Add(s.opts.Lease)
	}
	s.held[dl.ID] = held{token: dl.Lease, dest: dl.Destination, agent: agent, eventID: dl.EventID,
		attempts: dl.Attempts, createdAt: dl.CreatedAt, expiry: expiry}
}

// heldFor returns the remembered lease of delivery id, if any.
func (s *Server) heldFor(id string) (held, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[id]
	return h, ok
}

// extendHeld moves a remembered lease's expiry.
func (s *Server) extendHeld(id, token string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.held[id]; ok && h.token == token {
		h.expiry = expiry
		s.held[id] = h
	}
}

// forget drops the remembered lease of delivery id if it is still token's.
func (s *Server) forget(id, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.held[id]; ok && h.token == token {
		delete(s.held, id)
	}
}

// leaseOf reads the ticket raw that agent name sent and returns the leased
// delivery it stands for, as the relay knows it, with its destination (nil
// when the destination is no longer configured). When ok is false the
// ticket must not be used and ack is the answer: ackInvalid for an
// unreadable or forged ticket or one of another agent's delivery,
// ackLeaseLost for a lease that is over, ackRetry when the store could not
// be read.
func (s *Server) leaseOf(ctx context.Context, name, raw string) (dl store.Delivery, dest *destination, ack string, ok bool) {
	t, err := decodeTicket(raw)
	if err != nil {
		s.log.Warn("agent: unreadable ticket", "agent", name)
		return dl, nil, ackInvalid, false
	}
	h, mine := s.heldFor(t.ID)
	if mine && h.agent != name {
		s.log.Warn("agent: ticket for another agent's delivery refused", "agent", name, "delivery", t.ID)
		return dl, nil, ackInvalid, false
	}
	if !mine || subtle.ConstantTimeCompare([]byte(h.token), []byte(t.Lease)) != 1 {
		// A lease another process handed out (or this one before a
		// restart, or after this one's lease expired): the store knows.
		if h, ack, ok = s.leaseFromStore(ctx, name, t); !ok {
			return dl, nil, ack, false
		}
		s.remember(t.ID, h)
	}
	dl = store.Delivery{ID: t.ID, EventID: h.eventID, Destination: h.dest, State: store.StatePending,
		Attempts: h.attempts, CreatedAt: h.createdAt, Lease: h.token}
	return dl, s.tbl.Load().byName[h.dest], "", true
}

// remember keeps a lease read from the store for the next reports of it,
// unless this process holds a record of the delivery already: the store
// checks the token of a lease read this way, which may be stale.
func (s *Server) remember(id string, h held) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[id]; !ok {
		h.expiry = s.opts.Clock.Now().Add(s.opts.Lease)
		s.held[id] = h
	}
}

// leaseFromStore builds the record of a lease this process did not hand
// out from the delivery's stored state. The token is the ticket's: the
// store refuses it when it is not the live lease's. The destination must be
// one the agent serves now.
func (s *Server) leaseFromStore(ctx context.Context, name string, t ticket) (held, string, bool) {
	rec, err := s.q.Event(ctx, t.EventID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return held{}, ackInvalid, false
	case err != nil:
		s.log.Warn("agent: reading a delivery for its report failed; the agent will report it again", "delivery", t.ID, "error", err)
		return held{}, ackRetry, false
	}
	for _, d := range rec.Deliveries {
		if d.ID != t.ID {
			continue
		}
		dest := s.tbl.Load().byName[d.Destination]
		if dest == nil || dest.agent != name {
			s.log.Warn("agent: ticket for another agent's delivery refused", "agent", name, "delivery", t.ID)
			return held{}, ackInvalid, false
		}
		if d.State != store.StatePending {
			return held{}, ackLeaseLost, false
		}
		return held{token: t.Lease, dest: d.Destination, agent: dest.agent, eventID: d.EventID,
			attempts: d.Attempts, createdAt: d.CreatedAt}, "", true
	}
	return held{}, ackInvalid, false
}
