package faults

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
)

// The clock-step scenarios run the relay in this process, the one
// exception to the suite's real binary: a Go binary's clock cannot be
// stepped from outside (libfaketime does not reach it), but the relay's
// clock is an option, relay.Options.Clock, which these tests step.

// clockStep is the size of every step: more than a lease, a retry's
// backoff and a circuit's cooldown, less than the dedupe TTL.
const clockStep = time.Hour

// stepLoad is how long the clock-step scenarios post: twice the others',
// since a relay built with -race takes fewer callbacks a second. (A func:
// TestMain picks the size.)
func stepLoad() time.Duration { return 2 * size.load }

// stepSlack is how long before a forward step a duplicate's first delivery
// may lie: a delivery still leased, its outcome not yet written, when the
// step made its lease look expired.
const stepSlack = time.Second

// steppedClock is the wall clock of a process whose system clock is
// stepped (by hand, or by NTP in step mode): Now jumps by the step, while
// timers keep their schedule, since Go's timers run on the monotonic clock.
// clock.Fake is not that: its Set forward fires every timer on the way (the
// keeper's heartbeats keep every lease through the hour: an hour passing,
// not a step), and its Set back holds every timer for the hour.
//
// It is harsher than a real step in one way: a deadline the relay keeps
// in memory (a circuit's cooldown, the keeper's next heartbeat) is compared
// by the monotonic reading in a real process and does not see the step;
// here it does. Times the store records (due times, lease expiries, dedupe
// claims) carry no monotonic reading in either.
type steppedClock struct{ offset atomic.Int64 }

func (c *steppedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *steppedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return time.AfterFunc(d, f)
}

// step moves the wall clock by d, forwards or back.
func (c *steppedClock) step(d time.Duration) { c.offset.Add(int64(d)) }

// startInProcess runs a relay of spec in this process on clk; edit, when
// set, changes the config first.
func startInProcess(t *testing.T, sp relaySpec, clk clock.Clock, edit func(*config.Config)) *relaytest.Relay {
	t.Helper()
	cfg, err := config.Load([]byte(sp.config(freeAddr(t), freeAddr(t))), "clockstep.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	// A claim measured in the stepped clock: a TTL shorter than a forward
	// step would rightly let a repeat through as a new callback.
	if ttl := cfg.Dedupe.TTL.D(); ttl <= clockStep {
		t.Fatalf("dedupe.ttl %v must be longer than the %v step", ttl, clockStep)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	return relaytest.Start(t, cfg, relay.Options{Clock: clk, Logger: log, ShutdownTimeout: 5 * time.Second})
}

// The wall clock jumps an hour ahead under load. Every lease held at the
// step looks expired, so deliveries leased then may be delivered again
// (at-least-once): each duplicate's first delivery must lie within a second
// before the step, and they may number no more than what was in flight at
// the step: the requests the sink was serving, the deliveries it answered
// in that second (their outcomes possibly not yet written), and those
// leased ahead of a free worker.
func TestClockStepForward(t *testing.T) {
	s := newSink(t)
	s.delay.Store(int64(10 * time.Millisecond))
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	clk := &steppedClock{}
	r := startInProcess(t, sp, clk, nil)
	g := newLoadGen("step-fwd", r.Ingest)
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, stepLoad())
	time.Sleep(stepLoad() / 2)
	end := fs.begin("clock step +1h")
	inflight := s.inflight.Load()
	clk.step(clockStep)
	end()
	wait()
	l := checkLedger(t, g, s, []string{r.Admin}, &fs, stepSlack, start)
	// Leased ahead: as many as the attempts, concurrency 8, per destination
	// (deliver's leaseAhead).
	answered := deliveredIn(s, fs.windows()[0].start.Add(-stepSlack), fs.windows()[0].start)
	if bound := int(inflight) + answered + len(destinations)*8; l.Duplicates > bound {
		t.Errorf("%d duplicate deliveries after the step, want at most %d in flight at it", l.Duplicates, bound)
	}
	t.Logf("at the step: %d requests in flight at the sink, %d answered in the second before; duplicates: %d",
		inflight, answered, l.Duplicates)
}

// deliveredIn counts the deliveries the sink answered 200 from from to to.
func deliveredIn(s *sink, from, to time.Time) int {
	got, _ := s.snapshot()
	n := 0
	for _, ds := range got {
		for _, d := range ds {
			if !d.at.Before(from) && !d.at.After(to) {
				n++
			}
		}
	}
	return n
}

// The wall clock jumps an hour back under load, while retries wait: every
// first attempt to crm fails until the step. Callbacks taken after the
// step are delivered at once (their due time is the new now, ahead of the
// retries in the queue); retries scheduled before it are due an hour later
// by the new clock, as the store recorded them, and are delivered once the
// clock has caught up. Nothing is delivered twice: no lease looks expired.
func TestClockStepBack(t *testing.T) {
	s := newSink(t)
	s.delay.Store(int64(10 * time.Millisecond))
	crm := destinations[0]
	s.failFirst.Store(&crm)
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	clk := &steppedClock{}
	r := startInProcess(t, sp, clk, func(c *config.Config) {
		for i := range c.Destinations {
			// Retries wait long enough that many are queued at the step,
			// and the circuit stays closed however many first attempts
			// fail (an open circuit's cooldown is in memory; see
			// steppedClock).
			c.Destinations[i].Retry.InitialInterval = config.Duration(2 * time.Second)
			c.Destinations[i].Circuit.Disabled = true
		}
	})
	g := newLoadGen("step-back", r.Ingest)
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, stepLoad())
	time.Sleep(stepLoad() / 2)
	s.failFirst.Store(nil)
	clk.step(-clockStep)
	stepped := time.Now()
	wait()
	if n := g.settle(t.Context(), time.Minute); n > 0 {
		t.Fatalf("%d mids not answered 2xx a minute after the load", n)
	}
	fresh, late := waitFresh(t, g, s, stepped)
	// A stall would be the hour; under load the queue itself takes seconds.
	if late > time.Minute {
		t.Errorf("callbacks taken after the step: the slowest was delivered %v after its answer, want under a minute", late)
	}
	waiting := undelivered(g, s)
	t.Logf("after the step: %d callbacks delivered everywhere, the slowest %v after its answer; %d deliveries from before it still wait for their retry",
		fresh, late, waiting)
	// The store's due times catch up with the clock (in a real process,
	// by waiting the hour).
	clk.step(clockStep)
	l := checkLedger(t, g, s, []string{r.Admin}, &fs, sp.slack(), start)
	t.Logf("retries held by the step: %d of %d deliveries", waiting, l.Delivered)
}

// waitFresh waits (bounded by size.drain) until every mid first answered
// 2xx to a post sent after since is delivered to every destination, and
// returns how many there are and the longest from answer to delivery.
func waitFresh(t *testing.T, g *loadGen, s *sink, since time.Time) (n int, late time.Duration) {
	t.Helper()
	deadline := time.Now().Add(size.drain)
	for {
		answers := g.snapshot()
		got, _ := s.snapshot()
		n, late = 0, 0
		missing := ""
		for mid, as := range answers {
			first := firstOK(as)
			if first == nil || first.at.Add(-first.took).Before(since) {
				continue
			}
			n++
			for _, d := range destinations {
				ds := got[dmKey{d, mid}]
				if len(ds) == 0 {
					missing = fmt.Sprintf("mid %s not delivered to %s", mid, d)
					continue
				}
				late = max(late, ds[0].at.Sub(first.at))
			}
		}
		if missing == "" {
			return n, late
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbacks taken after the step are not all delivered within %v: %s", size.drain, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// undelivered counts the (mid, destination) pairs answered 2xx and not
// delivered yet.
func undelivered(g *loadGen, s *sink) int {
	answers := g.snapshot()
	got, _ := s.snapshot()
	n := 0
	for mid, as := range answers {
		if firstOK(as) == nil {
			continue
		}
		for _, d := range destinations {
			if len(got[dmKey{d, mid}]) == 0 {
				n++
			}
		}
	}
	return n
}

func firstOK(as []answer) *answer {
	for i := range as {
		if as[i].ok() {
			return &as[i]
		}
	}
	return nil
}
