package deliver

import (
	"context"
	"slices"
	"sync"
)

// gate admits at most limit holders at once, first come first served. Its
// limit is a destination's concurrency and changes on a reload while
// holders wait; a lower limit takes effect as holders leave.
type gate struct {
	mu      sync.Mutex
	limit   int
	used    int
	waiters []chan struct{} // closed when admitted, oldest first
}

func newGate(limit int) *gate { return &gate{limit: limit} }

// acquire waits for a place; false when ctx ended first.
func (g *gate) acquire(ctx context.Context) bool {
	g.mu.Lock()
	if g.used < g.limit && len(g.waiters) == 0 {
		g.used++
		g.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.waiters, ch); i >= 0 {
		g.waiters = slices.Delete(g.waiters, i, i+1)
		return false
	}
	// Admitted as ctx ended: pass the place on.
	g.used--
	g.admitLocked()
	return false
}

// release gives a place back.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used--
	g.admitLocked()
}

// setLimit changes the limit, admitting waiters if it grew.
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = n
	g.admitLocked()
}

// inUse is the number of holders.
func (g *gate) inUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}

func (g *gate) admitLocked() {
	for g.used < g.limit && len(g.waiters) > 0 {
		close(g.waiters[0])
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
		g.used++
	}
}
