package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of TailItem.
const (
	TailEvent   = "event"   // a callback was accepted, parked or found a duplicate
	TailAttempt = "attempt" // a delivery attempt ended
)

// TailItem is one line of GET /api/tail: a callback as ingest answered it,
// or a delivery attempt's outcome.
type TailItem struct {
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	EventID   string    `json:"event_id,omitempty"`
	WebhookID string    `json:"webhook_id,omitempty"`
	DedupeKey string    `json:"dedupe_key,omitempty"`
	// Outcome is accepted, parked or duplicate for an event, success,
	// retry or dead for an attempt.
	Outcome      string   `json:"outcome"`
	Destinations []string `json:"destinations,omitempty"`
	DeliveryID   string   `json:"delivery_id,omitempty"`
	Destination  string   `json:"destination,omitempty"`
	Attempt      int      `json:"attempt,omitempty"`
	Status       int      `json:"status,omitempty"`
	Error        string   `json:"error,omitempty"`
	DurationMS   float64  `json:"duration_ms,omitempty"`
}

// TailBuffer is how many items a subscriber may fall behind before it is
// dropped.
const TailBuffer = 256

// tailHeartbeat is how often an idle stream sends a comment, so proxies
// and clients see that it is alive.
const tailHeartbeat = 15 * time.Second

// Tail fans items out to the subscribers of GET /api/tail. Publish never
// blocks: a subscriber whose buffer is full is dropped (its stream ends
// and the client reconnects), so a slow reader cannot slow ingest or
// delivery down.
type Tail struct {
	mu     sync.Mutex
	subs   map[*tailSub]struct{}
	n      atomic.Int32 // len(subs), read without the lock
	buf    int
	closed bool
}

type tailSub struct {
	ch      chan TailItem
	dropped bool // set under Tail.mu when ch was closed for falling behind
}

// NewTail returns a Tail whose subscribers buffer up to buffer items
// (TailBuffer when buffer <= 0).
func NewTail(buffer int) *Tail {
	if buffer <= 0 {
		buffer = TailBuffer
	}
	return &Tail{subs: map[*tailSub]struct{}{}, buf: buffer}
}

// Publish sends it to every subscriber that has room and drops the others.
// Without subscribers it costs one atomic load.
func (t *Tail) Publish(it TailItem) {
	if t == nil || t.n.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		select {
		case s.ch <- it:
		default:
			s.dropped = true
			t.remove(s)
		}
	}
}

// Subscribers reports how many streams are open.
func (t *Tail) Subscribers() int { return int(t.n.Load()) }

// Close ends every stream and refuses new ones (shutdown: an open stream
// would hold the admin listener's graceful shutdown until its timeout).
func (t *Tail) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for s := range t.subs {
		t.remove(s)
	}
}

func (t *Tail) subscribe() (*tailSub, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	s := &tailSub{ch: make(chan TailItem, t.buf)}
	t.subs[s] = struct{}{}
	t.n.Add(1)
	return s, true
}

func (t *Tail) unsubscribe(s *tailSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remove(s)
}

// remove must be called with mu held.
func (t *Tail) remove(s *tailSub) {
	if _, ok := t.subs[s]; !ok {
		return
	}
	delete(t.subs, s)
	t.n.Add(-1)
	close(s.ch)
}

// visible is it as scope sees it; ok is false when it is none of scope's.
func (s *Scope) visible(it TailItem) (TailItem, bool) {
	if s == nil {
		return it, true
	}
	if it.Kind == TailAttempt {
		return it, s.Allows(it.Destination)
	}
	it.Destinations = slices.DeleteFunc(slices.Clone(it.Destinations), func(d string) bool { return !s.Allows(d) })
	return it, len(it.Destinations) > 0
}

// tail answers GET /api/tail with a server-sent events stream: one
// "data: {TailItem}" message per item in scope, a comment every 15 s, and
// an "event: dropped" message before the stream ends when the client fell
// too far behind, or "event: reauth" when a reload changed the tokens.
func (h *Handler) tail(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tail == nil {
		notConfigured(w, "live tail")
		return
	}
	changed := h.authChanges()
	sub, ok := h.opts.Tail.subscribe()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "relay is shutting down")
		return
	}
	defer h.opts.Tail.unsubscribe(sub)
	rc := http.NewResponseController(w)
	// The listener's write timeout is for ordinary answers; a stream
	// stays open until the client or the shutdown ends it.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": relay live tail\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	scope := scopeOf(r)
	beat := time.NewTicker(tailHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-changed:
			// The token or the portals changed (reload): the caller's
			// scope may be gone, so it must authenticate again.
			fmt.Fprint(w, "event: reauth\ndata: {\"error\":\"the relay's tokens changed; reconnect\"}\n\n")
			_ = rc.Flush()
			return
		case <-beat.C:
			fmt.Fprint(w, ": keepalive\n\n")
		case it, ok := <-sub.ch:
			if !ok {
				h.opts.Tail.mu.Lock()
				dropped := sub.dropped
				h.opts.Tail.mu.Unlock()
				if dropped {
					fmt.Fprint(w, "event: dropped\ndata: {\"error\":\"this stream fell behind and was dropped; reconnect\"}\n\n")
					_ = rc.Flush()
				}
				return
			}
			it, ok = scope.visible(it)
			if !ok {
				continue
			}
			b, _ := json.Marshal(it)
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
