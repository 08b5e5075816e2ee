package admin

import (
	"strconv"
	"testing"
)

// A subscriber that does not read is dropped once its buffer is full:
// Publish returns every time, the others keep their items, and the
// dropped one's channel is closed after the items it had room for.
func TestTailDropsSlowSubscriber(t *testing.T) {
	tail := NewTail(2)
	slow, _ := tail.subscribe()
	fast, _ := tail.subscribe()
	for i := range 5 {
		tail.Publish(TailItem{EventID: strconv.Itoa(i)})
		if it := <-fast.ch; it.EventID != strconv.Itoa(i) {
			t.Fatalf("fast subscriber got %+v, want item %d", it, i)
		}
	}
	if n := tail.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers, want only the fast one", n)
	}
	var got []string
	for it := range slow.ch { // ends: the channel is closed
		got = append(got, it.EventID)
	}
	if len(got) != 2 || got[0] != "0" || got[1] != "1" || !slow.dropped {
		t.Errorf("slow subscriber got %v (dropped %v), want its 2 buffered items and dropped", got, slow.dropped)
	}
	tail.unsubscribe(slow) // after a drop: a no-op, not a double close
	tail.unsubscribe(fast)
	if n := tail.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after both left", n)
	}
	tail.Publish(TailItem{}) // no subscribers: returns at once
}
