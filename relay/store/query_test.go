package store

import (
	"testing"
	"time"
)

func TestEventStatus(t *testing.T) {
	rec := func(parked bool, states ...DeliveryState) EventRecord {
		r := EventRecord{Event: Event{Parked: parked}}
		for _, s := range states {
			r.Deliveries = append(r.Deliveries, DeliveryRecord{Delivery: Delivery{State: s}})
		}
		return r
	}
	tests := []struct {
		rec  EventRecord
		want EventStatus
	}{
		{rec(true), EventParked},
		{rec(false, StateDelivered, StatePending, StateDead), EventPending},
		{rec(false, StateDelivered, StateDead, StateDiscarded), EventDead},
		{rec(false, StateDelivered, StateDiscarded), EventDiscarded},
		{rec(false, StateDelivered, StateDelivered), EventDelivered},
	}
	for _, tc := range tests {
		if got := tc.rec.Status(); got != tc.want {
			t.Errorf("Status of %+v = %s, want %s", tc.rec, got, tc.want)
		}
	}
}

func TestQueryExhausted(t *testing.T) {
	now := time.Now()
	id := NewID("evt_")
	if at, ok := IDTime(id); !ok || at.Before(now.Add(-time.Second)) || at.After(now.Add(time.Second)) {
		t.Fatalf("IDTime(%s) = %v, %v; want about %v", id, at, ok, now)
	}
	tests := []struct {
		name string
		q    EventQuery
		id   string
		want bool
	}{
		{"no since", EventQuery{}, id, false},
		{"since long after", EventQuery{Since: now.Add(time.Hour)}, id, true},
		{"since just after, within the slack", EventQuery{Since: now.Add(time.Second)}, id, false},
		{"since before", EventQuery{Since: now.Add(-time.Hour)}, id, false},
		{"not a NewID id", EventQuery{Since: now.Add(time.Hour)}, "evt_custom", false},
	}
	for _, tc := range tests {
		if got := tc.q.Exhausted(tc.id); got != tc.want {
			t.Errorf("%s: Exhausted = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestQueryMatchesTimeRange(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	rec := EventRecord{Event: Event{ReceivedAt: at}}
	tests := []struct {
		name string
		q    EventQuery
		want bool
	}{
		{"no range", EventQuery{}, true},
		{"since equal", EventQuery{Since: at}, true},
		{"since after", EventQuery{Since: at.Add(time.Nanosecond)}, false},
		{"until after", EventQuery{Until: at.Add(time.Nanosecond)}, true},
		{"until equal excludes", EventQuery{Until: at}, false},
		{"inside", EventQuery{Since: at.Add(-time.Hour), Until: at.Add(time.Hour)}, true},
		{"before the range", EventQuery{Since: at.Add(time.Hour), Until: at.Add(2 * time.Hour)}, false},
	}
	for _, tc := range tests {
		if got := tc.q.Matches(rec); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}
