package store

import (
	"context"
	"time"
)

// Event is one callback as the provider sent it. Body holds the original bytes
// and is never re-encoded.
type Event struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	// DedupeKey is the value of the dedupe fields (e.g. the mid, several
	// fields joined by ":"), sent to receivers as Idempotency-Key; "" when the
	// event is not deduped. The claim key given to Accept is scoped further by
	// webhook_id.
	DedupeKey   string    `json:"dedupe_key,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Body        []byte    `json:"-"`
	ReceivedAt  time.Time `json:"received_at"`
	// Destinations lists where the event was routed at accept time; empty for a
	// parked event.
	Destinations []string `json:"destinations"`
	// Parked is true while the event matched no route and waits for a replay.
	Parked bool `json:"parked,omitempty"`
}

// DeliveryState is where a delivery is in its life.
type DeliveryState string

// Delivery states.
const (
	StatePending   DeliveryState = "pending"   // queued or leased, will be attempted
	StateDelivered DeliveryState = "delivered" // a success status was received
	StateDead      DeliveryState = "dead"      // in the dead-letter queue
	// StateDiscarded marks a delivery an operator deleted from the DLQ; it is
	// never attempted again but stays in its event's record.
	StateDiscarded DeliveryState = "discarded"
)

// Delivery is one copy of an event on its way to one destination.
type Delivery struct {
	ID          string        `json:"id"`
	EventID     string        `json:"event_id"`
	Destination string        `json:"destination"`
	State       DeliveryState `json:"state"`
	// Attempts counts the attempts made so far; the next attempt is Attempts+1.
	Attempts int `json:"attempts"`
	// CreatedAt is when the delivery was first queued; max_age counts from it.
	// A DLQ replay resets it.
	CreatedAt  time.Time `json:"created_at"`
	DueAt      time.Time `json:"due_at"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`

	// Lease is the token of the current lease; set only on deliveries returned
	// by Lease, and required by Settle, ExtendLease and Release.
	Lease string `json:"-"`
	// Event is filled by Lease so the worker has the body without another read.
	Event *Event `json:"-"`
}

// Attempt is the record of one HTTP attempt of a delivery.
type Attempt struct {
	N        int           `json:"n"` // 1-based
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
	Status   int           `json:"status,omitempty"` // 0 when no response arrived
	Error    string        `json:"error,omitempty"`
	Response string        `json:"response,omitempty"` // truncated response body
}

// DeliveryRecord is a delivery with its attempt log.
type DeliveryRecord struct {
	Delivery
	AttemptLog []Attempt `json:"attempt_log"`
}

// EventRecord is an event with all of its deliveries.
type EventRecord struct {
	Event      Event            `json:"event"`
	Deliveries []DeliveryRecord `json:"deliveries"`
}

// Dedupe names the claim that Accept takes. A zero Key means no dedupe.
type Dedupe struct {
	Key string
	TTL time.Duration
}

// AcceptResult reports what Accept did.
type AcceptResult struct {
	// EventID is the new event's id, or for a duplicate the id of the event
	// that holds the claim.
	EventID string
	// Duplicate is true when the dedupe key was already claimed; nothing was
	// written then.
	Duplicate bool
	// Deliveries is the number of deliveries queued (0 for a duplicate or a
	// parked event).
	Deliveries int
}

// Page selects a slice of a list. Cursor is opaque and comes from the previous
// page's Next; Limit <= 0 means the backend's default (100).
type Page struct {
	Cursor string
	Limit  int
}

// DefaultPageLimit is the page size used when Page.Limit is not set.
const DefaultPageLimit = 100

// CallTimeout bounds a store call that no caller's deadline bounds (an
// outcome recorded during a drain, an agent's report), so that a dead
// store cannot hang it. An implementation constant, not an operator's.
const CallTimeout = 10 * time.Second

// Depths is a cheap snapshot of queue sizes.
type Depths struct {
	// Queued counts pending deliveries (due, scheduled or leased) per destination.
	Queued map[string]int
	// Dead counts dead-lettered deliveries per destination.
	Dead map[string]int
	// Parked counts parked events.
	Parked int
}

// Store is the durable heart of Relay. All methods are safe for concurrent use.
type Store interface {
	// Accept atomically claims the dedupe key (if any), stores the event and
	// queues one delivery per destination, due now. With no destinations the
	// event is stored parked. On a live claim it writes nothing and reports
	// Duplicate with the claiming event's id. It returns only after the write
	// is durable.
	Accept(ctx context.Context, ev Event, dests []string, dedupe Dedupe) (AcceptResult, error)

	// Lease hands out up to n pending deliveries of dest whose due time has
	// passed, oldest due first, each hidden from other leasers for lease. An
	// expired lease makes the delivery due again, so a crashed worker's work is
	// taken over.
	Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]Delivery, error)
	// ExtendLease pushes a held lease's expiry to now+lease.
	ExtendLease(ctx context.Context, d Delivery, lease time.Duration) error
	// Release gives a leased delivery back, due at due, without recording an
	// attempt (shutdown, open circuit).
	Release(ctx context.Context, d Delivery, due time.Time) error

	// Settle records an attempt of the leased delivery d and moves d as o
	// says (finished, due again at o.Due, or dead-lettered), in one atomic
	// step. It returns at once; done is called exactly once, from a
	// goroutine of the store's once the write is durable or refused (or
	// from the call itself when it cannot be queued), with nil, with
	// ErrLeaseLost when d's lease is no longer the live one, or with the
	// store's failure. done must not block: other outcomes wait behind it.
	// SettleWait is Settle for a caller that waits.
	Settle(ctx context.Context, d Delivery, o Settlement, done func(error))

	// Event returns an event with its deliveries and their attempts.
	Event(ctx context.Context, id string) (EventRecord, error)
	// Delivery returns one delivery without its attempt log (ErrNotFound
	// when there is none), so a caller can check where it goes before
	// acting on it.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// ListDLQ lists dead-lettered deliveries, oldest first; dest "" means all.
	ListDLQ(ctx context.Context, dest string, p Page) (items []Delivery, next string, err error)
	// ReplayDLQ moves one dead delivery back into its queue, due now, with its
	// attempt count and age reset. ErrNotFound when it is not in the DLQ, so a
	// second replay never queues it twice.
	ReplayDLQ(ctx context.Context, id string) error
	// DeleteDLQ takes one dead delivery out of the DLQ for good: it stays in
	// its event's record as StateDiscarded and is never attempted again.
	// ErrNotFound when it is not in the DLQ.
	DeleteDLQ(ctx context.Context, id string) error
	// FindEvents lists the events that q matches, newest first, each with
	// its deliveries but without body or attempt logs. One call examines at
	// most FindScanLimit events, so a page may hold fewer than p.Limit items,
	// even none, while next is not empty; follow next to search further.
	FindEvents(ctx context.Context, q EventQuery, p Page) (items []EventRecord, next string, err error)
	// ListParked lists parked events, oldest first.
	ListParked(ctx context.Context, p Page) (items []Event, next string, err error)
	// ReplayParked routes a parked event to dests (queued due now). With no
	// dests the event stays parked. ErrNotFound when it is not parked.
	ReplayParked(ctx context.Context, id string, dests []string) (int, error)
	// ExpireParked deletes the events still parked that were received
	// before cutoff, with their bodies, and returns how many it deleted.
	// The caller passes the cutoff (now less ingest.parked_ttl), so the
	// store needs no clock of its own for it.
	ExpireParked(ctx context.Context, cutoff time.Time) (int, error)

	// Depths reports queue sizes without scanning the queues.
	Depths(ctx context.Context) (Depths, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend. Calls after Close return ErrClosed.
	Close() error
}
