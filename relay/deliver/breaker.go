package deliver

import (
	"sync"
	"time"
)

// Circuit states, as state.Destination.Circuit and Options.OnCircuit give them.
const (
	// CircuitClosed: deliveries flow.
	CircuitClosed = "closed"
	// CircuitOpen: the destination is paused; its deliveries wait in the
	// queue, neither attempted nor dead-lettered.
	CircuitOpen = "open"
	// CircuitHalfOpen: the cooldown is over and one probe delivery decides
	// whether the circuit closes or opens again.
	CircuitHalfOpen = "half-open"
)

type breakerConfig struct {
	failures int           // consecutive failed attempts that open the circuit
	first    time.Duration // the first cooldown after the circuit opens
	cooldown time.Duration // the longest cooldown, which failed probes double up to
	disabled bool
}

// admission is what the breaker lets a dispatcher lease.
type admission int

const (
	admitAll   admission = iota // closed: as many as there are free workers
	admitProbe                  // half-open: exactly one, the probe
	admitNone                   // open, or a probe is out: nothing
)

// transition is a change of circuit state. seq orders transitions, so that
// reports made outside the lock never go backwards.
type transition struct {
	seq   uint64
	state string // "" when nothing changed
}

// breaker is one destination's circuit breaker, plus the attempt statistics
// that state.Destination shows. Workers record each attempt's result before
// they free their worker slot, so with concurrency 1 no attempt starts after
// the one that opened the circuit. It is safe for concurrent use.
type breaker struct {
	mu        sync.Mutex
	cfg       breakerConfig
	state     string
	failures  int           // consecutive failed attempts
	openUntil time.Time     // when an open circuit lets a probe through
	cooldown  time.Duration // the cooldown in force; doubles with each failed probe
	probing   bool          // a probe has been leased and not yet settled
	seq       uint64

	lastSuccess, lastFailure time.Time
	lastError                string
}

func newBreaker(cfg breakerConfig) *breaker {
	return &breaker{cfg: cfg, state: CircuitClosed}
}

func (b *breaker) moveLocked(state string) transition {
	b.state = state
	b.seq++
	return transition{seq: b.seq, state: state}
}

// admit says what the dispatcher may lease now. When nothing, wait is how
// long until that can change by itself (0: only a worker's report changes
// it).
func (b *breaker) admit(now time.Time) (a admission, wait time.Duration, tr transition) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case CircuitClosed:
		return admitAll, 0, tr
	case CircuitOpen:
		if now.Before(b.openUntil) {
			return admitNone, b.openUntil.Sub(now), tr
		}
		tr = b.moveLocked(CircuitHalfOpen)
	}
	if b.probing {
		return admitNone, 0, tr
	}
	b.probing = true
	return admitProbe, 0, tr
}

// probeUnused gives back a probe that found nothing due, or whose delivery
// was released without an attempt.
func (b *breaker) probeUnused() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// allows reports whether a leased delivery may be attempted now. Deliveries
// leased before the circuit opened are given back instead.
func (b *breaker) allows(probe bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return probe || b.state == CircuitClosed
}

// probeNow ends an open circuit's cooldown, so that the next admit hands
// out a probe at once: an operator replayed deliveries and wants to know
// now. A half-open or closed circuit is left as it is.
func (b *breaker) probeNow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != CircuitOpen || !now.Before(b.openUntil) {
		return false
	}
	b.openUntil = now
	return true
}

// record counts one attempt. A success closes the circuit whatever its
// state: the destination answers again. A failure opens a closed circuit
// after cfg.failures in a row, for cfg.first; a failed probe opens a
// half-open one again for twice the last cooldown, up to cfg.cooldown, so a
// receiver that recovers is found within seconds and one that stays down
// is probed ever more rarely. Other failures while open change nothing,
// since they began before it opened.
func (b *breaker) record(ok, probe bool, now time.Time, errText string) transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if ok {
		b.lastSuccess = now
		b.failures = 0
		b.cooldown = 0
		if b.state != CircuitClosed {
			return b.moveLocked(CircuitClosed)
		}
		return transition{}
	}
	b.lastFailure, b.lastError = now, errText
	b.failures++
	switch {
	case b.cfg.disabled:
	case probe && b.state == CircuitHalfOpen:
		b.cooldown = min(2*b.cooldown, b.cfg.cooldown)
		b.openUntil = now.Add(b.cooldown)
		return b.moveLocked(CircuitOpen)
	case b.state == CircuitClosed && b.failures >= b.cfg.failures:
		b.cooldown = min(max(b.cfg.first, time.Millisecond), b.cfg.cooldown)
		b.openUntil = now.Add(b.cooldown)
		return b.moveLocked(CircuitOpen)
	}
	return transition{}
}

// configure applies new settings (a reload) and keeps the state; turning
// the breaker off closes it.
func (b *breaker) configure(cfg breakerConfig) transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cfg = cfg
	if cfg.disabled && b.state != CircuitClosed {
		return b.moveLocked(CircuitClosed)
	}
	return transition{}
}

// config returns the settings in force.
func (b *breaker) config() breakerConfig {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg
}

// breakerView is a consistent copy of a breaker's state and statistics.
type breakerView struct {
	state                    string
	failures                 int
	cooldown                 time.Duration
	lastSuccess, lastFailure time.Time
	lastError                string
}

func (b *breaker) view() breakerView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return breakerView{b.state, b.failures, b.cooldown, b.lastSuccess, b.lastFailure, b.lastError}
}
