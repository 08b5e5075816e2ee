package deliver

import (
	"context"
	"testing"
	"time"
)

// acquireAsync starts an acquire and returns a channel that gets its result.
func acquireAsync(ctx context.Context, g *gate) <-chan bool {
	ch := make(chan bool, 1)
	go func() { ch <- g.acquire(ctx) }()
	return ch
}

// waitersOf waits until g has n waiters, so the order of acquires is known.
func waitersOf(t *testing.T, g *gate, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.waiters)
		g.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate has %d waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustAdmit(t *testing.T, ch <-chan bool, want bool) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("acquire = %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire did not return")
	}
}

func mustWait(t *testing.T, ch <-chan bool) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("acquire returned %v while the gate was full", got)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestGateAdmitsUpToLimitInOrder(t *testing.T) {
	ctx := context.Background()
	g := newGate(2)
	mustAdmit(t, acquireAsync(ctx, g), true)
	mustAdmit(t, acquireAsync(ctx, g), true)
	first := acquireAsync(ctx, g)
	waitersOf(t, g, 1)
	second := acquireAsync(ctx, g)
	waitersOf(t, g, 2)
	mustWait(t, first)
	if n := g.inUse(); n != 2 {
		t.Fatalf("inUse = %d, want 2", n)
	}

	g.release()
	mustAdmit(t, first, true)
	mustWait(t, second)
	g.release()
	mustAdmit(t, second, true)
	if n := g.inUse(); n != 2 {
		t.Fatalf("inUse = %d, want 2", n)
	}
}

func TestGateCancelledWaiterLeaves(t *testing.T) {
	g := newGate(1)
	mustAdmit(t, acquireAsync(context.Background(), g), true)
	ctx, cancel := context.WithCancel(context.Background())
	gone := acquireAsync(ctx, g)
	waitersOf(t, g, 1)
	next := acquireAsync(context.Background(), g)
	waitersOf(t, g, 2)

	cancel()
	mustAdmit(t, gone, false)
	waitersOf(t, g, 1)
	g.release()
	mustAdmit(t, next, true) // the place went to the waiter still there
	if n := g.inUse(); n != 1 {
		t.Fatalf("inUse = %d, want 1", n)
	}
}

// A waiter admitted at the moment its context ends either keeps the place
// (acquire reports true) or hands it on; the count must match either way.
func TestGateAdmittedAsCancelled(t *testing.T) {
	for range 200 {
		g := newGate(1)
		g.used = 1 // one holder
		ctx, cancel := context.WithCancel(context.Background())
		w := acquireAsync(ctx, g)
		waitersOf(t, g, 1)
		g.mu.Lock()
		cancel()
		g.used--        // the holder leaves...
		g.admitLocked() // ...and the place goes to the waiter, as ctx ends
		g.mu.Unlock()
		var got bool
		select {
		case got = <-w:
		case <-time.After(10 * time.Second):
			t.Fatal("acquire did not return")
		}
		want := 0
		if got {
			want = 1
		}
		if n := g.inUse(); n != want || len(g.waiters) != 0 {
			t.Fatalf("acquire = %v, then inUse = %d and %d waiters; want %d and 0", got, n, len(g.waiters), want)
		}
	}
}

func TestGateSetLimit(t *testing.T) {
	ctx := context.Background()
	g := newGate(1)
	mustAdmit(t, acquireAsync(ctx, g), true)
	a := acquireAsync(ctx, g)
	waitersOf(t, g, 1)
	b := acquireAsync(ctx, g)
	waitersOf(t, g, 2)

	g.setLimit(3) // a reload raised the concurrency
	mustAdmit(t, a, true)
	mustAdmit(t, b, true)

	g.setLimit(1) // lowered: takes effect as holders leave
	c := acquireAsync(ctx, g)
	waitersOf(t, g, 1)
	g.release()
	g.release()
	mustWait(t, c)
	g.release()
	mustAdmit(t, c, true)
	if n := g.inUse(); n != 1 {
		t.Fatalf("inUse = %d, want 1", n)
	}
}
