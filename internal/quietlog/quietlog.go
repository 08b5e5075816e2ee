package quietlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is the shortest time between two lines of one repeated
// error when Options.Interval is zero.
const DefaultInterval = 10 * time.Second

// causeKeys are the attributes whose value is an error's cause. Records at
// warn or above that carry one are collapsed; all others pass through.
var causeKeys = map[string]bool{"err": true, "store_error": true}

// maxKeys bounds how many distinct errors are remembered, so that errors
// whose text varies without end cannot grow the table: past it new ones
// pass through unsummarised.
const maxKeys = 256

// Options tunes New. The zero value is ready to use.
type Options struct {
	// Interval is the shortest time between two lines of one repeated
	// error; DefaultInterval when zero.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// New wraps next. Two records are the same error when they have the same
// message and the same cause (the err or store_error attribute); other
// attributes, such as an event or delivery id, may differ. The first is
// logged; later ones within the interval are counted, and the first one
// after it is logged with the count of those in between in its message. A
// count still pending when its error stops is logged by the next record
// of any kind that arrives after the interval.
func New(next slog.Handler, o Options) slog.Handler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &handler{next: next, st: &state{opts: o, seen: map[string]*entry{}}}
}

type handler struct {
	next slog.Handler
	st   *state
}

type state struct {
	opts Options

	mu   sync.Mutex
	seen map[string]*entry
	// pending counts the entries with suppressed > 0; written under mu,
	// read without it so that other records skip the lock.
	pending atomic.Int32
}

// entry is one error's state: when it was last logged, and what has been
// held back since.
type entry struct {
	logged     time.Time
	lastAt     time.Time // when the latest held-back record came
	suppressed int
	last       slog.Record  // the latest held-back record
	via        slog.Handler // the handler (with its attributes) it came through
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), st: h.st}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	now := h.st.opts.Now()
	// r's own error first, so its count goes into r's line rather than a
	// summary of its own.
	var err error
	if r.Level < slog.LevelWarn {
		err = h.next.Handle(ctx, r)
	} else if cause, ok := causeOf(r); !ok {
		err = h.next.Handle(ctx, r)
	} else if out, emit := h.st.admit(r.Message+"\x00"+cause, r, h.next, now); emit {
		err = h.next.Handle(ctx, out)
	}
	for _, s := range h.st.due(now) {
		_ = s.via.Handle(ctx, s.rec)
	}
	return err
}

func causeOf(r slog.Record) (string, bool) {
	var cause string
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if causeKeys[a.Key] {
			cause, found = a.Value.String(), true
			return false
		}
		return true
	})
	return cause, found
}

// admit decides whether r, an error under key, is logged now, and returns
// it as it is to be logged.
func (s *state) admit(key string, r slog.Record, via slog.Handler, now time.Time) (slog.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.seen[key]
	if e == nil {
		if len(s.seen) >= maxKeys {
			s.forgetLocked(now)
			if len(s.seen) >= maxKeys {
				return r, true
			}
		}
		s.seen[key] = &entry{logged: now}
		return r, true
	}
	if now.Sub(e.logged) < s.opts.Interval {
		if e.suppressed == 0 {
			s.pending.Add(1)
		}
		e.suppressed++
		e.last, e.via, e.lastAt = r.Clone(), via, now
		return r, false
	}
	out := r
	if e.suppressed > 0 {
		out = summary(r, e.suppressed, now.Sub(e.logged))
		e.suppressed, e.last, e.via = 0, slog.Record{}, nil
		s.pending.Add(-1)
	}
	e.logged = now
	return out, true
}

// held is a summary of a held-back count, to be logged through via.
type held struct {
	rec slog.Record
	via slog.Handler
}

// due returns the summaries whose interval has passed, for errors that
// stopped repeating.
func (s *state) due(now time.Time) []held {
	if s.pending.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []held
	for _, e := range s.seen {
		if e.suppressed == 0 || now.Sub(e.logged) < s.opts.Interval {
			continue
		}
		out = append(out, held{summary(e.last, e.suppressed, e.lastAt.Sub(e.logged)), e.via})
		e.suppressed, e.last, e.via = 0, slog.Record{}, nil
		e.logged = now
		s.pending.Add(-1)
	}
	return out
}

// forgetLocked drops the errors that have been quiet for an interval.
func (s *state) forgetLocked(now time.Time) {
	for k, e := range s.seen {
		if e.suppressed == 0 && now.Sub(e.logged) >= s.opts.Interval {
			delete(s.seen, k)
		}
	}
}

// summary is r with the count of held-back repeats in its message.
func summary(r slog.Record, n int, over time.Duration) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, fmt.Sprintf("%s (repeated %d times in %s)", r.Message, n, over.Round(time.Second)), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	out.AddAttrs(slog.Int("repeated", n))
	return out
}
