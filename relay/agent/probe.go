package agent

import (
	"time"

	"github.com/relaygw/relay/relay/deliver"
)

// The circuit breaker of an agent destination is its deliver.Pipeline's,
// and works as for a direct destination: a poll leases nothing for a
// destination whose circuit is open, one probe delivery once the cooldown
// is over, and every attempt the agents report is settled through it. What
// this file adds is keeping track of the probe, which an agent holds out of
// the relay's sight: the breaker admits nothing else until the probe is
// reported, released, or its lease runs out.

// probeHold is the probe delivery of a half-open destination, handed to an
// agent and not settled yet.
type probeHold struct {
	id     string
	expiry time.Time // its lease, as extended by heartbeats
	pipe   *deliver.Pipeline
}

// admit asks pipe's breaker what a poll may lease for d now. A probe whose
// lease ran out without a report (its agent died, or the answer to the
// poll never arrived) is given back first, so the breaker can send another.
func (s *Server) admit(d *destination, pipe *deliver.Pipeline) (ok, probe bool) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	p, out := s.probes[d.name]
	expired := out && !now.Before(p.expiry)
	if expired {
		delete(s.probes, d.name)
	}
	s.mu.Unlock()
	if expired {
		p.pipe.ProbeUnused()
	}
	return pipe.Admit(now)
}

// holdProbe records that delivery id is d's probe, leased until expiry.
func (s *Server) holdProbe(d *destination, pipe *deliver.Pipeline, id string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probes[d.name] = probeHold{id: id, expiry: expiry, pipe: pipe}
}

// takeProbe reports whether delivery id is dest's probe, and forgets it if
// so: the probe is settled once.
func (s *Server) takeProbe(dest, id string) (*deliver.Pipeline, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.probes[dest]
	if !ok || p.id != id {
		return nil, false
	}
	delete(s.probes, dest)
	return p.pipe, true
}

// probeUnused gives back the probe's turn when delivery id is dest's probe
// and it ends without an attempt (released, lease lost).
func (s *Server) probeUnused(dest, id string) {
	if pipe, ok := s.takeProbe(dest, id); ok {
		pipe.ProbeUnused()
	}
}

// touchProbe moves the probe's expiry when delivery id is dest's probe.
func (s *Server) touchProbe(dest, id string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.probes[dest]; ok && p.id == id {
		p.expiry = expiry
		s.probes[dest] = p
	}
}
