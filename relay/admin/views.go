package admin

import (
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/relaygw/relay/relay/store"
)

// The JSON shapes of the API. They are separate from the store's types so
// that the wire format is stated in one place and a store change cannot
// silently change it.

// Body encodings of EventView.BodyEncoding.
const (
	BodyText   = "text"   // Body is the bytes as they arrived (valid UTF-8)
	BodyBase64 = "base64" // Body is standard base64 of bytes that are not UTF-8
)

// EventView is the answer of GET /api/events/{id}.
type EventView struct {
	ID          string            `json:"id"`
	WebhookID   string            `json:"webhook_id"`
	DedupeKey   string            `json:"dedupe_key,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	ReceivedAt  time.Time         `json:"received_at"`
	Status      store.EventStatus `json:"status"`
	Route       RouteView         `json:"route"`
	BodyBytes   int               `json:"body_bytes"`
	Body        string            `json:"body"`
	Encoding    string            `json:"body_encoding"`
	Deliveries  []DeliveryView    `json:"deliveries"`
}

// RouteView is where an event was routed: its webhook_id and destinations
// (none while parked).
type RouteView struct {
	WebhookID    string   `json:"webhook_id"`
	Destinations []string `json:"destinations"`
	Parked       bool     `json:"parked"`
}

// DeliveryView is one delivery; AttemptLog is set on an event's page only.
type DeliveryView struct {
	ID          string              `json:"id"`
	EventID     string              `json:"event_id"`
	Destination string              `json:"destination"`
	State       store.DeliveryState `json:"state"`
	Attempts    int                 `json:"attempts"`
	LastStatus  int                 `json:"last_status"`
	LastError   string              `json:"last_error"`
	CreatedAt   time.Time           `json:"created_at"`
	DueAt       time.Time           `json:"due_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	// Replays counts the DLQ replays seen in the attempt log (event page
	// only); Attempts counts from the last one.
	Replays    int           `json:"replays,omitempty"`
	AttemptLog []AttemptView `json:"attempt_log,omitempty"`
	// Sent is what the destination's transform makes of the event, set on
	// an event's page for destinations with a transform only (the others
	// are sent the event's body as it is).
	Sent *SentView `json:"sent,omitempty"`
}

// SentView is what a destination with a transform is sent for an event. It
// is computed when the event is read, under the running config: transforms
// run at delivery time, so it is what a pending delivery will be sent, and
// for a finished one what it was sent unless the transform changed since.
type SentView struct {
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        string            `json:"body"`
	Encoding    string            `json:"body_encoding"`
	// Error is the transform's failure, as a delivery attempt records it.
	Error string `json:"error,omitempty"`
}

// Sent is a destination's transform applied to one event, as the relay
// hands it to the admin API.
type Sent struct {
	ContentType string
	Header      map[string]string
	Body        []byte
	Err         error
}

func sentView(s Sent) *SentView {
	if s.Err != nil {
		return &SentView{Error: s.Err.Error(), Encoding: BodyText}
	}
	body, enc := bodyView(s.Body)
	return &SentView{ContentType: s.ContentType, Headers: s.Header, Body: body, Encoding: enc}
}

// AttemptView is one HTTP attempt. A DLQ replay starts the count again
// at 1; Replay says which replay an attempt belongs to (0: the delivery's
// first run), so a replayed attempt 1 is not taken for a second first one.
type AttemptView struct {
	N          int       `json:"n"`
	Replay     int       `json:"replay,omitempty"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	Response   string    `json:"response,omitempty"`
}

// EventSummary is one item of GET /api/events: an event without its body,
// with its deliveries but not their attempts.
type EventSummary struct {
	ID         string            `json:"id"`
	WebhookID  string            `json:"webhook_id"`
	DedupeKey  string            `json:"dedupe_key,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	Status     store.EventStatus `json:"status"`
	Deliveries []DeliveryView    `json:"deliveries"`
}

// ParkedView is one item of GET /api/parked.
type ParkedView struct {
	ID          string    `json:"id"`
	WebhookID   string    `json:"webhook_id"`
	DedupeKey   string    `json:"dedupe_key,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
	BodyBytes   int       `json:"body_bytes"`
	Body        string    `json:"body"`
	Encoding    string    `json:"body_encoding"`
}

// ReloadReport is the answer of POST /api/reload.
type ReloadReport struct {
	File         string   `json:"file"`
	Routes       int      `json:"routes"`
	Destinations int      `json:"destinations"`
	Added        []string `json:"added,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	Changed      []string `json:"changed,omitempty"`
	// Stranded counts, per removed destination, the deliveries still queued
	// for it. They stay queued (nothing is dropped) and flow again when the
	// destination is configured again.
	Stranded map[string]int `json:"stranded,omitempty"`
	// RestartRequired lists changed keys that only a restart applies
	// (listeners, store); the running values stay until then.
	RestartRequired []string `json:"restart_required,omitempty"`
	// Warnings are FILE:LINE: messages that did not refuse the file: each
	// ${VAR} unset, in the relay's environment, without a default.
	Warnings []string `json:"warnings,omitempty"`
}

// ReplayResult is the answer of the bulk replay routes.
type ReplayResult struct {
	// Replayed counts DLQ deliveries requeued, or parked events routed.
	Replayed int `json:"replayed"`
	// Deliveries counts deliveries queued by a parked replay.
	Deliveries int `json:"deliveries,omitempty"`
	// StillParked counts parked events that the current routes still do
	// not match; they stay parked.
	StillParked int `json:"still_parked,omitempty"`
	// Skipped counts items that were gone by the time their turn came
	// (replayed or deleted meanwhile).
	Skipped int            `json:"skipped,omitempty"`
	Failed  []ReplayFailed `json:"failed,omitempty"`
}

// ReplayFailed is one item a bulk replay could not move.
type ReplayFailed struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

func bodyView(b []byte) (text, encoding string) {
	if utf8.Valid(b) {
		return string(b), BodyText
	}
	return base64.StdEncoding.EncodeToString(b), BodyBase64
}

func eventView(rec store.EventRecord) EventView {
	ev := rec.Event
	body, enc := bodyView(ev.Body)
	v := EventView{
		ID: ev.ID, WebhookID: ev.WebhookID, DedupeKey: ev.DedupeKey, ContentType: ev.ContentType,
		ReceivedAt: ev.ReceivedAt, Status: rec.Status(),
		Route:     RouteView{WebhookID: ev.WebhookID, Destinations: nonNil(ev.Destinations), Parked: ev.Parked},
		BodyBytes: len(ev.Body), Body: body, Encoding: enc,
		Deliveries: make([]DeliveryView, 0, len(rec.Deliveries)),
	}
	for _, d := range rec.Deliveries {
		dv := deliveryView(d.Delivery)
		dv.AttemptLog = make([]AttemptView, 0, len(d.AttemptLog))
		prev := 0
		for _, a := range d.AttemptLog {
			// The store logs attempts oldest first and numbers them from
			// 1 again after a replay, so a number that does not grow
			// starts the next replay's run.
			if a.N <= prev {
				dv.Replays++
			}
			prev = a.N
			dv.AttemptLog = append(dv.AttemptLog, AttemptView{
				N: a.N, Replay: dv.Replays, At: a.At, DurationMS: float64(a.Duration) / float64(time.Millisecond),
				Status: a.Status, Error: a.Error, Response: a.Response,
			})
		}
		v.Deliveries = append(v.Deliveries, dv)
	}
	return v
}

func eventSummary(rec store.EventRecord) EventSummary {
	ev := rec.Event
	s := EventSummary{
		ID: ev.ID, WebhookID: ev.WebhookID, DedupeKey: ev.DedupeKey, ReceivedAt: ev.ReceivedAt,
		Status: rec.Status(), Deliveries: make([]DeliveryView, 0, len(rec.Deliveries)),
	}
	for _, d := range rec.Deliveries {
		s.Deliveries = append(s.Deliveries, deliveryView(d.Delivery))
	}
	return s
}

func deliveryView(d store.Delivery) DeliveryView {
	return DeliveryView{
		ID: d.ID, EventID: d.EventID, Destination: d.Destination, State: d.State,
		Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError,
		CreatedAt: d.CreatedAt, DueAt: d.DueAt, UpdatedAt: d.UpdatedAt,
	}
}

func parkedView(ev store.Event) ParkedView {
	body, enc := bodyView(ev.Body)
	return ParkedView{
		ID: ev.ID, WebhookID: ev.WebhookID, DedupeKey: ev.DedupeKey, ContentType: ev.ContentType,
		ReceivedAt: ev.ReceivedAt, BodyBytes: len(ev.Body), Body: body, Encoding: enc,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
