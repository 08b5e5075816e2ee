package clock

import (
	"sync"
	"time"
)

// Clock reads the time and arms timers.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine once d has passed (on a Fake:
	// on the goroutine that calls Advance).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer that Relay uses.
type Timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or returns c, or Real when c is nil: the default of an options field.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Fake is a Clock that moves only when Advance or Set moves it. It is safe
// for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeTimer struct {
	c     *Fake
	at    time.Time
	f     func()
	armed bool
	// listed says whether the timer is in c.timers; Advance drops fired
	// and stopped ones, and Reset puts them back.
	listed bool
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that Advance fires.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, armed: true, listed: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.at, t.armed = t.c.now.Add(d), true
	if !t.listed {
		t.listed = true
		t.c.timers = append(t.c.timers, t)
	}
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

// Advance moves the clock on by d, running on the caller's goroutine each
// timer's func as the clock reaches it, earliest first.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	to := c.now.Add(d)
	for {
		var due *fakeTimer
		for _, t := range c.timers {
			if t.armed && !t.at.After(to) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		if due == nil {
			break
		}
		if due.at.After(c.now) {
			c.now = due.at
		}
		due.armed = false
		c.mu.Unlock()
		due.f()
		c.mu.Lock()
	}
	c.now = to
	c.timers = compact(c.timers)
}

// Set moves the clock to t, forwards or back (a clock step). Timers fire
// as Advance fires them when t is ahead; stepping back fires none.
func (c *Fake) Set(t time.Time) {
	if d := t.Sub(c.Now()); d > 0 {
		c.Advance(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// compact drops timers that are no longer armed; Reset lists them again.
func compact(ts []*fakeTimer) []*fakeTimer {
	out := ts[:0]
	for _, t := range ts {
		if t.armed {
			out = append(out, t)
		} else {
			t.listed = false
		}
	}
	clear(ts[len(out):])
	return out
}
