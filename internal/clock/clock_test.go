package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewFake(start)
	var got []string
	var at []time.Duration
	c.AfterFunc(3*time.Second, func() { got = append(got, "c"); at = append(at, c.Now().Sub(start)) })
	c.AfterFunc(time.Second, func() { got = append(got, "a"); at = append(at, c.Now().Sub(start)) })
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	if !stopped.Stop() {
		t.Fatal("Stop of an armed timer reported false")
	}
	c.Advance(2 * time.Second)
	if len(got) != 1 || got[0] != "a" || at[0] != time.Second {
		t.Fatalf("after 2s: fired %v at %v, want [a] at [1s]", got, at)
	}
	c.Advance(2 * time.Second)
	if len(got) != 2 || got[1] != "c" || at[1] != 3*time.Second {
		t.Fatalf("after 4s: fired %v at %v, want [a c] at [1s 3s]", got, at)
	}
	if now := c.Now().Sub(start); now != 4*time.Second {
		t.Fatalf("Now is start+%v, want +4s", now)
	}
}

func TestFakeResetAfterFire(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	n := 0
	tm := c.AfterFunc(time.Second, func() { n++ })
	c.Advance(time.Second)
	c.Advance(time.Second) // a fired timer is dropped from the list...
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported it armed")
	}
	c.Advance(time.Second) // ...and Reset lists it again
	if n != 2 {
		t.Fatalf("fired %d times, want 2", n)
	}
}

func TestFakeSetBackFiresNothing(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	fired := false
	c.AfterFunc(time.Second, func() { fired = true })
	c.Set(start.Add(-time.Hour))
	if fired || !c.Now().Equal(start.Add(-time.Hour)) {
		t.Fatalf("after a step back: fired %v, now %v", fired, c.Now())
	}
	c.Set(start.Add(time.Hour))
	if !fired {
		t.Fatal("a step forward past the timer did not fire it")
	}
}

func TestOr(t *testing.T) {
	if Or(nil) != Real {
		t.Fatal("Or(nil) is not Real")
	}
	f := NewFake(time.Unix(0, 0))
	if Or(f) != Clock(f) {
		t.Fatal("Or(f) is not f")
	}
}
