package store

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// WriteChecker is implemented by a backend that knows whether it can write,
// which a ping does not tell: a full disk or a Redis that refuses writes
// (MISCONF, OOM, a read-only replica) still answers reads.
type WriteChecker interface {
	// CheckWrite returns nil while the backend's last write succeeded. Once
	// one was refused it runs a small probe write, and keeps failing until
	// some write succeeds again.
	CheckWrite(ctx context.Context) error
	// WriteErrors counts the writes refused since the backend opened.
	WriteErrors() int64
}

// WriteHealth is the bookkeeping behind WriteChecker that backends share:
// every write's outcome goes through Record, and Check probes only while the
// last outcome was a refusal and no write was refused for ProbeIdle, so an
// idle relay still finds out that the store recovered, while a busy one is
// judged by its real writes: a full disk may take a probe's few bytes into
// pages it already has and still refuse every callback. The zero value is
// ready and healthy.
type WriteHealth struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	errs   atomic.Int64
	last   atomic.Pointer[refusal] // nil while the last write succeeded
	lastAt atomic.Int64            // unix nanoseconds of the last refusal
	// probing admits one probe at a time; checks made meanwhile report
	// the last refusal rather than queue more writes on a failing store.
	probing atomic.Bool
}

type refusal struct{ err error }

// ProbeIdle is how long after a refused write Check waits before it probes.
const ProbeIdle = time.Second

func (h *WriteHealth) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Record notes the outcome of one write that n callers waited on: nil
// marks the store writable again, a refusal counts n write errors. Errors
// that are the caller's own (a canceled context) are not the store's and
// are ignored.
func (h *WriteHealth) Record(err error, n int) {
	switch {
	case err == nil:
		if h.last.Load() != nil {
			h.last.Store(nil)
		}
	case errors.Is(err, context.Canceled):
	default:
		h.errs.Add(int64(n))
		h.lastAt.Store(h.now().UnixNano())
		h.last.Store(&refusal{err})
	}
}

// Err returns the last write's refusal, or nil when it succeeded.
func (h *WriteHealth) Err() error {
	if r := h.last.Load(); r != nil {
		return r.err
	}
	return nil
}

// Errors counts the refused writes recorded so far.
func (h *WriteHealth) Errors() int64 { return h.errs.Load() }

// Check returns nil while the last write succeeded. After a refusal it
// returns the refusal until ProbeIdle has passed without another, then runs
// probe, a small write that must not go through Record, and takes its
// outcome as the store's state. While one probe runs, other checks return
// the last refusal.
func (h *WriteHealth) Check(ctx context.Context, probe func(context.Context) error) error {
	r := h.last.Load()
	if r == nil {
		return nil
	}
	if h.now().Sub(time.Unix(0, h.lastAt.Load())) < ProbeIdle {
		return r.err
	}
	if !h.probing.CompareAndSwap(false, true) {
		return r.err
	}
	defer h.probing.Store(false)
	if err := probe(ctx); err != nil {
		return err
	}
	// Only clear the refusal the probe was made for: a write refused
	// meanwhile stands.
	h.last.CompareAndSwap(r, nil)
	return h.Err()
}
