package deliver

import (
	"log/slog"
	"sync"
	"time"

	"github.com/relaygw/relay/config"
)

// Circuit is one destination's circuit breaker together with what reports
// its transitions: the log lines and Options.OnCircuit. A dispatcher keeps
// one per direct destination; the agent server keeps one per agent
// destination, so both follow the same rules (see breaker) and say the same
// things. It is safe for concurrent use.
//
// The caller asks Admit before leasing, and passes every attempt's result to
// Record. A probe that Admit allowed must be settled exactly once: by Record
// with probe set, or by ProbeUnused when it was not attempted (nothing was
// due, it was released, its lease ran out unreported). Until then nothing
// else is admitted.
type Circuit struct {
	name      string
	log       *slog.Logger
	onCircuit func(dest, state string)
	br        *breaker

	hookMu  sync.Mutex
	hookSeq uint64 // the last transition reported
}

// NewCircuit returns a closed circuit for d with d's circuit settings
// (defaults applied as for direct delivery). Transitions are logged to
// opts.Logger with the destination's name and reported to opts.OnCircuit;
// the rest of opts is ignored.
func NewCircuit(d config.Destination, opts Options) *Circuit {
	o := opts.withDefaults()
	return newCircuit(d.Name, settingsFor(d).circuit, o.Logger.With("destination", d.Name), o.OnCircuit)
}

func newCircuit(name string, cfg breakerConfig, log *slog.Logger, onCircuit func(dest, state string)) *Circuit {
	return &Circuit{name: name, log: log, onCircuit: onCircuit, br: newBreaker(cfg)}
}

// Configure applies d's circuit settings (a reload), keeping the state;
// turning the breaker off closes it.
func (c *Circuit) Configure(d config.Destination) {
	c.notify(c.br.configure(settingsFor(d).circuit))
}

// Admit reports whether deliveries may be leased now: ok false means none
// (the circuit is open, or its probe is out); probe true means exactly one,
// the probe, which must then be settled (see Circuit).
func (c *Circuit) Admit(now time.Time) (ok, probe bool) {
	a, _, tr := c.br.admit(now)
	c.notify(tr)
	return a != admitNone, a == admitProbe
}

// ProbeNow ends an open circuit's cooldown so the next Admit hands out a
// probe: an operator replayed deliveries of the destination, which counts
// as the probe. It reports whether the circuit was open.
func (c *Circuit) ProbeNow(now time.Time) bool {
	if !c.br.probeNow(now) {
		return false
	}
	c.log.Info("deliver: circuit open; an operator's replay is sent now as the probe")
	return true
}

// ProbeUnused gives back the probe's turn without an attempt, so the next
// Admit hands out another probe.
func (c *Circuit) ProbeUnused() { c.br.probeUnused() }

// Record counts one attempt: success closes the circuit; failures open it
// as described in the package documentation. probe says whether the
// attempt was the probe; errText is the failure, shown as LastError.
func (c *Circuit) Record(success, probe bool, now time.Time, errText string) {
	c.notify(c.br.record(success, probe, now, errText))
}

// State returns the circuit's part of DestinationState: Name, Circuit,
// ConsecutiveFailures, LastSuccess, LastFailure and LastError.
func (c *Circuit) State() DestinationState {
	v := c.br.view()
	return DestinationState{
		Name:                c.name,
		Circuit:             v.state,
		ConsecutiveFailures: v.failures,
		LastSuccess:         v.lastSuccess,
		LastFailure:         v.lastFailure,
		LastError:           v.lastError,
	}
}

// notify logs a transition and reports it to onCircuit, in order: a
// transition older than one already reported is dropped, since it was made
// under the breaker's lock but reported outside it.
func (c *Circuit) notify(tr transition) {
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
