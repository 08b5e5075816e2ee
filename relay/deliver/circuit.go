package deliver

import (
	"log/slog"
	"sync"
	"time"
)

// circuit is one destination's circuit breaker together with what reports
// its transitions: the log lines and Options.OnCircuit. Each Pipeline has
// one, direct or agent destination alike. It is safe for concurrent use.
type circuit struct {
	name      string
	log       *slog.Logger
	onCircuit func(dest, state string)
	br        *breaker

	hookMu  sync.Mutex
	hookSeq uint64 // the last transition reported
}

func newCircuit(name string, cfg breakerConfig, log *slog.Logger, onCircuit func(dest, state string)) *circuit {
	return &circuit{name: name, log: log, onCircuit: onCircuit, br: newBreaker(cfg)}
}

// ProbeNow ends an open circuit's cooldown so the next admission hands out
// a probe: an operator replayed deliveries of the destination, which counts
// as the probe. It reports whether the circuit was open.
func (c *circuit) ProbeNow(now time.Time) bool {
	if !c.br.probeNow(now) {
		return false
	}
	c.log.Info("deliver: circuit open; an operator's replay is sent now as the probe")
	return true
}

// ProbeUnused gives back the probe's turn without an attempt.
func (c *circuit) ProbeUnused() { c.br.probeUnused() }

// Record counts one attempt: success closes the circuit; failures open it
// as described in the package documentation. probe says whether the
// attempt was the probe; errText is the failure, shown as LastError.
func (c *circuit) Record(success, probe bool, now time.Time, errText string) {
	c.notify(c.br.record(success, probe, now, errText))
}

// notify logs a transition and reports it to onCircuit, in order: a
// transition older than one already reported is dropped, since it was made
// under the breaker's lock but reported outside it.
func (c *circuit) notify(tr transition) {
	if tr.state == "" {
		return
	}
	c.hookMu.Lock()
	defer c.hookMu.Unlock()
	if tr.seq <= c.hookSeq {
		return
	}
	c.hookSeq = tr.seq
	switch cfg := c.br.config(); tr.state {
	case CircuitOpen:
		c.log.Warn("deliver: circuit open; destination paused, its deliveries wait in the queue",
			"failures", cfg.failures, "cooldown", c.br.view().cooldown)
	case CircuitHalfOpen:
		c.log.Info("deliver: circuit half-open; sending one probe delivery")
	case CircuitClosed:
		c.log.Info("deliver: circuit closed; destination resumed")
	}
	if c.onCircuit != nil {
		c.onCircuit(c.name, tr.state)
	}
}
