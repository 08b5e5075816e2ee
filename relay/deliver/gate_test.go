package deliver

import (
	"testing"

	"github.com/relaygw/relay/relay/store"
)

func jobFor(id string) job { return job{d: store.Delivery{ID: id}} }

// mustPass calls g.pass and checks which job, if any, it hands on.
func mustPass(t *testing.T, g *gate, want string) {
	t.Helper()
	j, ok := g.pass()
	switch {
	case want == "" && ok:
		t.Fatalf("pass handed on %s, want the place given up", j.d.ID)
	case want != "" && !ok:
		t.Fatalf("pass gave the place up, want it handed to %s", want)
	case ok && j.d.ID != want:
		t.Fatalf("pass handed on %s, want %s", j.d.ID, want)
	}
}

func mustUse(t *testing.T, g *gate, want int) {
	t.Helper()
	if got := g.inUse(); got != want {
		t.Fatalf("%d places in use, want %d", got, want)
	}
}

func TestGateQueuesBeyondLimitAndPassesInOrder(t *testing.T) {
	g := newGate(2)
	for i, id := range []string{"a", "b", "c", "d"} {
		if got, want := g.enter(jobFor(id)), i < 2; got != want {
			t.Fatalf("enter(%s) = %v, want %v", id, got, want)
		}
	}
	mustUse(t, g, 2)
	mustPass(t, g, "c")
	if g.enter(jobFor("e")) {
		t.Fatal("e entered ahead of the queued d")
	}
	mustPass(t, g, "d")
	mustPass(t, g, "e")
	mustUse(t, g, 2)
	mustPass(t, g, "")
	mustPass(t, g, "")
	mustUse(t, g, 0)
	if !g.enter(jobFor("f")) {
		t.Fatal("f did not enter an empty gate")
	}
}

func TestGateLowerLimitTakesEffectAsAttemptsEnd(t *testing.T) {
	g := newGate(3)
	for _, id := range []string{"a", "b", "c"} {
		g.enter(jobFor(id))
	}
	g.enter(jobFor("d"))
	if in := g.setLimit(1); len(in) != 0 {
		t.Fatalf("a lower limit let %d jobs in", len(in))
	}
	mustPass(t, g, "") // 3 in use, limit 1: places are given up
	mustPass(t, g, "")
	mustUse(t, g, 1)
	mustPass(t, g, "d") // within the limit now: the place goes to d
	mustUse(t, g, 1)
	mustPass(t, g, "")
	mustUse(t, g, 0)
}

func TestGateHigherLimitLetsQueuedJobsIn(t *testing.T) {
	g := newGate(1)
	for _, id := range []string{"a", "b", "c", "d"} {
		g.enter(jobFor(id))
	}
	in := g.setLimit(3)
	if len(in) != 2 || in[0].d.ID != "b" || in[1].d.ID != "c" {
		t.Fatalf("a higher limit let in %v, want b and c", in)
	}
	mustUse(t, g, 3)
	mustPass(t, g, "d")
	mustUse(t, g, 3)
}
