package deliver

import "sync"

// gate admits at most limit attempts at once and queues the jobs that wait
// for a place, first come first served. A worker whose attempt ends takes
// the next queued job itself (pass) and keeps its place, so a delivery
// leased ahead starts without a goroutine being woken for it. Its limit is
// a destination's concurrency and changes on a reload; a lower limit takes
// effect as attempts end.
type gate struct {
	mu     sync.Mutex
	limit  int
	used   int
	queued []job // oldest first, from queued[head]
	head   int
}

func newGate(limit int) *gate { return &gate{limit: limit} }

// enter takes a place for j and reports true, or queues j for a worker to
// pass it on and reports false.
func (g *gate) enter(j job) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used < g.limit && g.waiting() == 0 {
		g.used++
		return true
	}
	g.queued = append(g.queued, j)
	return false
}

// pass is called when an attempt ends: it hands its place to the oldest
// queued job and returns it, or gives the place up (false).
func (g *gate) pass() (job, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used <= g.limit && g.waiting() > 0 {
		return g.popLocked(), true
	}
	g.used--
	return job{}, false
}

// setLimit changes the limit and returns the queued jobs that a higher one
// lets in now; the caller starts them.
func (g *gate) setLimit(n int) []job {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = n
	var in []job
	for g.used < g.limit && g.waiting() > 0 {
		g.used++
		in = append(in, g.popLocked())
	}
	return in
}

// waiting is the number of queued jobs; g.mu is held.
func (g *gate) waiting() int { return len(g.queued) - g.head }

func (g *gate) popLocked() job {
	j := g.queued[g.head]
	g.queued[g.head] = job{}
	g.head++
	if g.head == len(g.queued) {
		g.queued, g.head = g.queued[:0], 0
	}
	return j
}

// inUse is the number of places taken.
func (g *gate) inUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}
