package store

import (
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// EventStatus sums up where an event's deliveries are, for operators.
type EventStatus string

// Event statuses, from the most to the least urgent: an event shows the
// first that applies.
const (
	EventParked    EventStatus = "parked"    // matched no route; waits for a replay
	EventPending   EventStatus = "pending"   // a delivery is still to be attempted
	EventDead      EventStatus = "dead"      // nothing pending, a delivery is in the DLQ
	EventDiscarded EventStatus = "discarded" // nothing pending or dead, a delivery was discarded
	EventDelivered EventStatus = "delivered" // every delivery was delivered
)

// EventStatuses lists every EventStatus, for validating input.
var EventStatuses = []EventStatus{EventParked, EventPending, EventDead, EventDiscarded, EventDelivered}

// Status sums up r's deliveries; see EventStatus.
func (r EventRecord) Status() EventStatus {
	if r.Event.Parked {
		return EventParked
	}
	seen := map[DeliveryState]bool{}
	for _, d := range r.Deliveries {
		seen[d.State] = true
	}
	switch {
	case seen[StatePending]:
		return EventPending
	case seen[StateDead]:
		return EventDead
	case seen[StateDiscarded]:
		return EventDiscarded
	}
	return EventDelivered
}

// FindScanLimit is how many events one FindEvents call examines at most, so
// that a search of a large store never holds the backend for long.
const FindScanLimit = 2000

// idClockSlack allows for an event id minted a little before the event's
// ReceivedAt (clock steps), when a search stops early at its Since bound.
const idClockSlack = time.Minute

// EventQuery selects events for FindEvents. Zero fields match everything.
type EventQuery struct {
	WebhookID string
	// DedupeKey is the event's dedupe value: the mid under the default
	// dedupe fields [mid].
	DedupeKey string
	// Status matches the event's Status().
	Status EventStatus
	// Since matches events received at or after it.
	Since time.Time
	// Until matches events received before it.
	Until time.Time
}

// Matches reports whether q selects r. r must hold its deliveries when q
// has a Status.
func (q EventQuery) Matches(r EventRecord) bool {
	ev := r.Event
	switch {
	case q.WebhookID != "" && ev.WebhookID != q.WebhookID:
		return false
	case q.DedupeKey != "" && ev.DedupeKey != q.DedupeKey:
		return false
	case !q.Since.IsZero() && ev.ReceivedAt.Before(q.Since):
		return false
	case !q.Until.IsZero() && !ev.ReceivedAt.Before(q.Until):
		return false
	case q.Status != "" && r.Status() != q.Status:
		return false
	}
	return true
}

// Exhausted reports whether a newest-first search can stop at id: the id was
// minted (see NewID) well before q.Since, so it and every older event were
// received too early to match. Ids that NewID did not make never stop a
// search.
func (q EventQuery) Exhausted(id string) bool {
	if q.Since.IsZero() {
		return false
	}
	t, ok := IDTime(id)
	return ok && t.Before(q.Since.Add(-idClockSlack))
}

// IDTime returns the time an id from NewID was minted (to the millisecond).
func IDTime(id string) (time.Time, bool) {
	i := strings.LastIndexByte(id, '_')
	u, err := ulid.ParseStrict(id[i+1:])
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}
